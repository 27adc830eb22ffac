"""Over HTTP, a bridge answering /xroad lookups with xroad_fast says what a bridge answering them with Spyne says.

The unit test (tests/unit/test_xroad_fast.py) compares both paths in-process for every record; this one
runs two real nodes on the same demo data, one with ``VISS_BRIDGE_XROAD_FAST_LOOKUPS=false``, so the
setting, the pipeline around the fast path (message log, use counts) and gunicorn are in the picture.
Bodies are compared after exclusive C14N, a fault's UUID replaced (it is new for every fault).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from lxml import etree

from tests.conftest import DEMO_CONSUMER, EDUCATION_CONSUMER, RunningBridge, start_bridge
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.facade.xroad import lookup_request

CONSUMER = {"viis_education": EDUCATION_CONSUMER}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningBridge, RunningBridge]]:
    fast = start_bridge(tmp_path_factory.mktemp("fast"), workers=1)
    try:
        spyne = start_bridge(tmp_path_factory.mktemp("spyne"), workers=1,
                             extra_env={"VISS_BRIDGE_XROAD_FAST_LOOKUPS": "false"})
        try:
            yield fast, spyne
        finally:
            spyne.stop()
    finally:
        fast.stop()


def canonical(response: requests.Response) -> bytes:
    root = etree.fromstring(response.content)
    for detail in root.iter("faultDetail"):
        detail.text = "FAULT-ID"
    return etree.tostring(root, method="c14n", exclusive=True)  # type: ignore[no-any-return]


def post(node: RunningBridge, body: bytes) -> requests.Response:
    return requests.post(node.xroad, data=body, headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=30)


def test_lookups_answer_alike_with_and_without_spyne(nodes: tuple[RunningBridge, RunningBridge],
                                                     demo_world: dict[str, list[dict[str, Any]]]) -> None:
    fast, spyne = nodes
    catalog = load_catalog(Path(fast.catalog_dir))
    compared = 0
    for dataset in catalog:
        client = CONSUMER.get(dataset.dataset, DEMO_CONSUMER)
        keys = [{k: r[k] for k in dataset.key} for r in demo_world[dataset.dataset][:5]]
        keys += [{k: "NO-SUCH-KEY" for k in dataset.key}, {k: "" for k in dataset.key}]
        for number, key in enumerate(keys):
            body = lookup_request(dataset, client, key, f"fast-{dataset.dataset}-{number}")
            quick, slow = post(fast, body), post(spyne, body)
            assert quick.status_code == slow.status_code, (dataset.dataset, key, quick.text, slow.text)
            assert canonical(quick) == canonical(slow), (dataset.dataset, key)
            compared += 1
    assert compared == 7 * len(catalog)
