"""Per-answer access writes, group committed, under load (issue 12): still exact, still logged, still at once.

Many keep-alive callers against one quota of N on a node of 2 worker processes (each with its threads,
whose reservations and tracker entries share transactions): exactly N answers are given, N uses are
counted, N tracker entries written, every other call gets the quota fault, and every given answer has
its request and response records in the message log. On SQLite and PostgreSQL. A revocation and a
person's restriction take effect on the very next request of every worker.
"""

from __future__ import annotations

import threading
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.access_helpers import fault_of, registry_for
from tests.conftest import RunningBridge, start_bridge
from tests.soap_helpers import xroad_lookup
from viss_bridge.access.tracker import DataTracker
from viss_bridge.msglog.store import LogStore

QUOTA = 15
CALLERS = 16
CALLS = 64
ACCESS_DENIED = "Server.ServerProxy.AccessDenied"
RESTRICTED = "Server.ServerProxy.AccessDenied.SubjectRestriction"


def log_url(bridge: RunningBridge) -> str:
    """Where the node's message log is: beside an SQLite store, inside a PostgreSQL one."""
    if bridge.database_url.startswith("sqlite:///"):
        return f"sqlite:///{Path(bridge.database_url.removeprefix('sqlite:///')).with_name('bridge-msglog.sqlite')}"
    return bridge.database_url


def call_at_once(url: str, bodies: list[tuple[str, bytes]]) -> list[tuple[str, requests.Response]]:
    """Post every (message id, body) from CALLERS threads, each on its own keep-alive connection."""
    barrier = threading.Barrier(CALLERS)
    results: list[tuple[str, requests.Response]] = []
    lock = threading.Lock()

    def caller(index: int) -> None:
        session = requests.Session()
        session.trust_env = False
        barrier.wait()
        for message_id, body in bodies[index::CALLERS]:
            response = session.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=60)
            with lock:
                results.append((message_id, response))

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(CALLERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    return results


def check_quota_under_load(bridge: RunningBridge, demo_world: dict[str, Any], label: str) -> None:
    from viss_bridge.catalog.catalog import load_catalog

    dataset = load_catalog(bridge.catalog_dir).get("fpr_person")
    registry = registry_for(bridge)
    client = f"LV/GOV/90000077777/{label}"
    registry.add_client(client, "load test")
    permission = registry.grant(client, "fpr_person", purpose="load", legal_basis="law", quota=QUOTA)
    people = [p["person_code"] for p in demo_world["fpr_person"][:CALLS]]
    bodies = []
    for person in people:
        message_id = f"quota-{uuid.uuid4()}"
        bodies.append((message_id, xroad_lookup(dataset, client, {"person_code": person}, message_id)))

    results = call_at_once(bridge.xroad, bodies)
    assert len(results) == CALLS
    given = [(m, r) for m, r in results if r.status_code == 200]
    refused = [fault_of(r) for _m, r in results if r.status_code != 200]
    assert len(given) == QUOTA, refused[:3]
    assert len(refused) == CALLS - QUOTA
    assert all(code == ACCESS_DENIED and permission.number in text and "quota" in text for code, text in refused), \
        refused[:3]
    # exactly N uses counted, N tracker entries, one per given answer
    assert registry.permission(permission.number).used == QUOTA
    tracker = DataTracker(registry.engine)
    entries = [e for person in people for e in tracker.usage(person)[0] if e.client_id == client]
    assert len(entries) == QUOTA
    assert sorted(e.message_id for e in entries) == sorted(m for m, _r in given)
    # every given answer is in the message log with its request and its response
    store = LogStore(log_url(bridge), read_only=True)
    try:
        for message_id, response in given:
            directions = sorted(row[0] for row in store.query(
                "SELECT direction FROM msglog_record WHERE message_id = ?", (message_id,)))
            assert directions == ["request", "response"], (message_id, directions)
            assert message_id.encode() in response.content  # the echoed header: the answer to this very call
    finally:
        store.close()


def check_changes_apply_to_the_next_request(bridge: RunningBridge, demo_world: dict[str, Any], label: str) -> None:
    """A worker that just served a client under a permission refuses the client's next call once it is revoked."""
    from viss_bridge.catalog.catalog import load_catalog

    dataset = load_catalog(bridge.catalog_dir).get("fpr_person")
    registry = registry_for(bridge)
    client = f"LV/GOV/90000077778/{label}"
    registry.add_client(client, "revocation test")
    permission = registry.grant(client, "fpr_person", purpose="load", legal_basis="law")
    person, other = demo_world["fpr_person"][5]["person_code"], demo_world["fpr_person"][6]["person_code"]
    warm = call_at_once(bridge.xroad, [("warm", xroad_lookup(dataset, client, {"person_code": other}))] * CALLERS)
    assert all(r.status_code == 200 for _m, r in warm)  # every worker has the permission in its cache now

    tracker = DataTracker(registry.engine, registry.audit)
    tracker.restrict(person, dataset, reason="load test")
    answers = call_at_once(bridge.xroad, [("r", xroad_lookup(dataset, client, {"person_code": person}))] * CALLERS)
    assert {fault_of(r)[0] for _m, r in answers} == {RESTRICTED}
    still = call_at_once(bridge.xroad, [("o", xroad_lookup(dataset, client, {"person_code": other}))] * CALLERS)
    assert all(r.status_code == 200 for _m, r in still)

    registry.revoke_permission(permission.number, reason="load test over")
    after = call_at_once(bridge.xroad, [("x", xroad_lookup(dataset, client, {"person_code": other}))] * CALLERS)
    faults = [fault_of(r) for _m, r in after]
    assert all(code == ACCESS_DENIED and "revoked" in text for code, text in faults), faults[:3]
    assert registry.permission(permission.number).used == 2 * CALLERS  # the refused calls counted nothing


@pytest.fixture(scope="module")
def sqlite_bridge(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    bridge = start_bridge(tmp_path_factory.mktemp("writes-sqlite"), workers=2)
    yield bridge
    bridge.stop()


def test_quota_exact_and_logged_under_load_sqlite(sqlite_bridge, demo_world) -> None:  # type: ignore[no-untyped-def]
    check_quota_under_load(sqlite_bridge, demo_world, "LOAD-SQLITE")


def test_revocation_and_restriction_apply_to_the_next_request_sqlite(sqlite_bridge, demo_world) -> None:  # type: ignore[no-untyped-def]
    check_changes_apply_to_the_next_request(sqlite_bridge, demo_world, "NEXT-SQLITE")


@pytest.mark.postgres
def test_quota_exact_and_logged_under_load_postgresql(pg_database, tmp_path, demo_world) -> None:  # type: ignore[no-untyped-def]
    bridge = start_bridge(tmp_path / "writes-pg", database_url=pg_database, workers=2)
    try:
        check_quota_under_load(bridge, demo_world, "LOAD-PG")
        check_changes_apply_to_the_next_request(bridge, demo_world, "NEXT-PG")
    finally:
        bridge.stop()
