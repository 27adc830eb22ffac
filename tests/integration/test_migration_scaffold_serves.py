"""Scaffolded drafts, unchanged, are published by a running bridge and answer like the legacy persons_provider."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
from lxml import etree

from tests.conftest import DEMO_CONSUMER, RunningBridge, cli, start_bridge
from tests.integration.test_migration_shadow import write_requests
from tests.legacy_helpers import PERSONS_WSDL, original_client, plain
from tests.soap_helpers import post
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.demo.legacy_providers import ProviderServer
from viss_bridge.facade.xroad import lookup_request


@pytest.fixture(scope="module")
def own_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    running = start_bridge(tmp_path_factory.mktemp("scaffold-bridge"))
    yield running
    running.stop()


def _wait_for(url: str, timeout: float = 20) -> requests.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = requests.get(url, timeout=5)
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_scaffold_validate_serve_and_shadow(own_bridge: RunningBridge, persons_provider: ProviderServer, demo_world,
                                            tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    env = own_bridge.env()
    # 1. scaffold straight into the running bridge's catalog (live answers from the persons_provider)
    cli("migrate", "scaffold", str(PERSONS_WSDL), "-o", str(own_bridge.catalog_dir), "--provider-url", persons_provider.url,
        "--consumer", DEMO_CONSUMER, "--consumer-network", "127.0.0.0/8", env=env)
    # 2. the drafts validate as they are
    validated = cli("catalog", "validate", str(own_bridge.catalog_dir), env=env)
    assert "pmlp_person" in validated.stdout
    # 3. the bridge publishes them: the dataset on /xroad and the old contract at /legacy/<name>
    cli("clients", "grant", DEMO_CONSUMER, "pmlp_person", env=env)
    wsdl = _wait_for(f"{own_bridge.url}/legacy/pmlp-fizpersonas-v1-0?wsdl")
    assert wsdl.status_code == 200, wsdl.text
    assert b'targetNamespace="http://ivis.eps.gov.lv/XMLSchemas/PMLP/FizPersonas/v1-0"' in wsdl.content
    deadline = time.monotonic() + 20
    while b"pmlp_person" not in requests.get(f"{own_bridge.xroad}?wsdl", timeout=5).content:
        assert time.monotonic() < deadline, "the scaffolded dataset was not published on /xroad"
        time.sleep(0.2)

    persons = demo_world["fpr_person"]
    several = next(p for p in persons if len(p["addresses"]) > 1)
    via_bridge = original_client(PERSONS_WSDL, f"{own_bridge.url}/legacy/pmlp-fizpersonas-v1-0")
    via_provider = original_client(PERSONS_WSDL, persons_provider.url)
    for code in (persons[0]["person_code"], several["person_code"]):
        assert plain(via_bridge.GetPerson(PersonCode=code)) == plain(via_provider.GetPerson(PersonCode=code))

    dataset = load_catalog(own_bridge.catalog_dir).get("pmlp_person")
    answer = post(own_bridge.xroad, lookup_request(dataset, DEMO_CONSUMER, {"person_code": several["person_code"]},
                                                   "scaffold-1", user_id="LV01019012345"))
    assert answer.status_code == 200, answer.text
    record = etree.fromstring(answer.content).find(".//{*}record")
    assert record.findtext("{*}given_name") == several["first_name"]
    assert len(record.findall("{*}address")) == len(several["addresses"])

    # 4. shadow: the scaffolded contract answers like the provider
    folder = write_requests(tmp_path / "requests", [p["person_code"] for p in persons[:5]])
    result = cli("migrate", "shadow", "--service", "PMLP/FizPersonas/v1-0", "--legacy-url", persons_provider.url,
                 "--bridge-url", f"{own_bridge.url}/legacy/pmlp-fizpersonas-v1-0", "--requests", str(folder),
                 "--wsdl", str(PERSONS_WSDL), "--rate", "50", "--format", "json", "--fail-under", "100", env=env)
    assert json.loads(result.stdout)["parity"] == 100.0
