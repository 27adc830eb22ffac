"""A fresh demo has one access request waiting for its owner; preparing the demo again never files another."""

from __future__ import annotations

from pathlib import Path

from viss_bridge.access.registry import AccessRegistry
from viss_bridge.access.requests import AccessRequests
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.db import make_engine
from viss_bridge.demo.seed import DEMO_REQUEST, prepare_demo


def requests_of(data_dir: Path) -> AccessRequests:
    paths, _ = prepare_demo(data_dir, size=20)
    return AccessRequests(AccessRegistry(make_engine(paths.database_url)), load_catalog(paths.catalog_dir).get)


def test_the_demo_owner_finds_one_pending_request_and_it_is_filed_once(tmp_path: Path) -> None:
    client, dataset, purpose, _, fields = DEMO_REQUEST
    requests = requests_of(tmp_path)
    pending = requests.list(status="pending")
    assert [(r.client_id, r.dataset, r.purpose, list(r.fields or ())) for r in pending] == [(client, dataset, purpose,
                                                                                 sorted(fields))]
    # Its owner sees it (the console's work list); another owner does not.
    assert [r.request_id for r in requests.list(actor="LV/GOV/90000500057/SAIS")] == [pending[0].request_id]
    assert requests.list(actor="LV/GOV/90000100015/FPR") == []
    requests.approve(pending[0].request_id, "LV/GOV/90000500057/SAIS")
    # Preparing again (every `viss-bridge demo` start does) leaves the decided request alone and files none.
    again = requests_of(tmp_path)
    assert [r.status for r in again.list()] == ["approved"]
