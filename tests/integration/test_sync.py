"""Replication from a legacy provider over real HTTP: full, interrupted midway, resumed, incremental;
the store matches the provider afterwards and replicated reads never reach the persons_provider."""

from __future__ import annotations

import time
from typing import Iterator

import pytest
import requests
import yaml

from tests.conftest import DEMO_CONSUMER, RunningBridge, cli, start_bridge
from tests.soap_helpers import post, xroad_lookup
from viss_bridge.catalog.values import to_json
from viss_bridge.demo.legacy_catalog import legacy_manifest
from viss_bridge.demo.legacy_providers import ProviderServer

PAGE = 30


@pytest.fixture(scope="module")
def replica_bridge(tmp_path_factory: pytest.TempPathFactory, persons_provider: ProviderServer) -> Iterator[RunningBridge]:
    bridge = start_bridge(tmp_path_factory.mktemp("sync-bridge"), workers=1)
    try:
        manifest = legacy_manifest("persons", persons_provider.url, "replicated", retries={"attempts": 1, "backoff": 0})
        manifest["source"]["changes"]["page_size"] = PAGE
        (bridge.catalog_dir / "fpr_person_replica.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
        cli("clients", "grant", DEMO_CONSUMER, "fpr_person_replica", env=bridge.env())
        yield bridge
    finally:
        bridge.stop()


def _store_records(bridge: RunningBridge) -> dict[str, dict]:  # type: ignore[type-arg]
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    dataset = load_catalog(bridge.catalog_dir).get("fpr_person_replica")
    engine = make_engine(bridge.database_url)
    try:
        changes = DatasetStore(engine).changes(dataset, 0, 100000)
    finally:
        engine.dispose()
    return {c.record["person_code"]: to_json(c.record) for c in changes if c.record is not None}


def test_sync_resumes_after_a_provider_failure_midway_and_matches_the_provider(replica_bridge, persons_provider):  # type: ignore[no-untyped-def]
    persons_provider.reset()
    persons_provider.set_mode("fault", after=2)  # pages 1 and 2 succeed, page 3 faults
    failed = cli("sync", "fpr_person_replica", env=replica_bridge.env(), check=False)
    assert failed.returncode == 1
    assert "ProviderFault" in failed.stderr and "run again to resume" in failed.stderr
    assert len(_store_records(replica_bridge)) == 2 * PAGE  # whole pages only
    assert "ProviderFault" in cli("sync", "--status", env=replica_bridge.env()).stdout

    # meanwhile the register changes a record already copied and one not yet copied
    codes = sorted(persons_provider.state.records)
    persons_provider.state.update(codes[0], {"first_name": "Mainīts"})
    persons_provider.state.update(codes[-1], {"status": "deceased", "death_date": "2026-02-01"})
    persons_provider.reset()
    resumed = cli("sync", "fpr_person_replica", env=replica_bridge.env())
    assert "resuming after: ProviderFault" in resumed.stdout
    status = cli("sync", "--status", env=replica_bridge.env()).stdout
    assert "fpr_person_replica" in status and "ProviderFault" not in status  # the error is cleared once resumed
    # resumed at the cursor: the 140 records not yet copied + the 2 changed ones, not all 200 again
    remaining = 200 - 2 * PAGE + 2
    assert persons_provider.calls() == {"GetPersonChanges": -(-remaining // PAGE)}
    assert _store_records(replica_bridge) == persons_provider.state.snapshot()

    # incremental: only what changed since
    persons_provider.state.update(codes[5], {"last_name": "Bērziņa-Ozola"})
    persons_provider.reset()
    again = cli("sync", "fpr_person_replica", env=replica_bridge.env())
    assert "incremental sync, 1 page(s), 1 record(s)" in again.stdout
    assert persons_provider.calls() == {"GetPersonChanges": 1}
    assert _store_records(replica_bridge) == persons_provider.state.snapshot()


def test_replicated_dataset_is_served_without_calling_the_provider(replica_bridge, persons_provider):  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.catalog import load_catalog

    cli("sync", "fpr_person_replica", env=replica_bridge.env())
    deadline = time.monotonic() + 20
    while "fpr_person_replica" not in requests.get(replica_bridge.url + "/", timeout=5).text and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.1)  # permission cache
    dataset = load_catalog(replica_bridge.catalog_dir).get("fpr_person_replica")
    persons_provider.reset()
    persons_provider.set_mode("down")  # even a provider that is down does not matter now
    for code in sorted(persons_provider.state.records)[:10]:
        response = post(replica_bridge.xroad, xroad_lookup(dataset, DEMO_CONSUMER, {"person_code": code}))
        assert response.status_code == 200, response.text
        assert f"<ds:person_code>{code}</ds:person_code>".encode() in response.content or code.encode() in response.content
    assert persons_provider.calls() == {}
    persons_provider.reset()


def test_sync_of_a_dataset_without_legacy_source_is_refused(replica_bridge):  # type: ignore[no-untyped-def]
    result = cli("sync", "fpr_person", env=replica_bridge.env(), check=False)
    assert result.returncode != 0 and "changes operation" in result.stderr


def test_serve_keeps_replicas_fresh_with_sync_interval(tmp_path_factory, persons_provider):  # type: ignore[no-untyped-def]
    bridge = start_bridge(tmp_path_factory.mktemp("sync-loop"), workers=1, extra_env={"VISS_BRIDGE_SYNC_INTERVAL": "0.3"})
    try:
        manifest = legacy_manifest("persons", persons_provider.url, "replicated")
        (bridge.catalog_dir / "fpr_person_replica.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
        persons_provider.reset()
        deadline = time.monotonic() + 30
        while len(_store_records(bridge)) < len(persons_provider.state.records) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _store_records(bridge) == persons_provider.state.snapshot()
        code = sorted(persons_provider.state.records)[7]
        persons_provider.state.update(code, {"first_name": "Ilga"})
        while _store_records(bridge)[code]["first_name"] != "Ilga" and time.monotonic() < deadline:
            time.sleep(0.2)
        assert _store_records(bridge) == persons_provider.state.snapshot()
    finally:
        bridge.stop()


@pytest.mark.postgres
def test_sync_resume_on_postgresql(persons_provider, pg_database, tmp_path):  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine
    from viss_bridge.upstream.pool import ProviderPool
    from viss_bridge.upstream.sync import SyncJob, SyncState

    manifest = legacy_manifest("persons", persons_provider.url, "replicated", retries={"attempts": 1, "backoff": 0})
    manifest["source"]["changes"]["page_size"] = 40
    (tmp_path / "fpr_person_replica.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    dataset = load_catalog(tmp_path).get("fpr_person_replica")
    engine = make_engine(pg_database)
    try:
        store, state = DatasetStore(engine), SyncState(engine)
        store.create_schema()
        state.create_schema()
        pool = ProviderPool()
        persons_provider.reset()
        persons_provider.set_mode("down", after=3)
        first = SyncJob(dataset, store, pool, state).run()
        assert first.error is not None and first.error.cause == "ProviderUnavailable"
        assert store.count(dataset) == 3 * 40
        persons_provider.reset()
        second = SyncJob(dataset, store, pool, state).run()
        assert second.error is None and second.complete
        records = {c.record["person_code"]: to_json(c.record) for c in store.changes(dataset, 0, 10000) if c.record}
        assert records == persons_provider.state.snapshot()
    finally:
        engine.dispose()


def test_sync_logs_its_calls_to_the_provider(replica_bridge, persons_provider):  # type: ignore[no-untyped-def]
    import sqlite3
    from pathlib import Path

    persons_provider.reset()
    cli("sync", "fpr_person_replica", "--full", env=replica_bridge.env())
    calls = persons_provider.calls()["GetPersonChanges"]
    path = Path(replica_bridge.database_url.removeprefix("sqlite:///")).with_name("bridge-msglog.sqlite")
    with sqlite3.connect(path, timeout=30) as conn:
        rows = conn.execute("SELECT direction, dialect, status, body FROM msglog_record WHERE leg = 'provider' "
                            "AND service = 'pmlp-fpr/GetPersonChanges' ORDER BY seq").fetchall()
    assert len(rows) >= 2 * calls and calls >= 1  # every call of this run (and of earlier runs) on the log
    last_request, last_response = rows[-2], rows[-1]
    assert last_request[0] == "request" and last_request[1] == "legacy_soap" and b"GetPersonChanges" in last_request[3]
    assert last_response[0] == "response" and last_response[2] == 200 and b"Envelope" in last_response[3]
