"""Production storage: the bridge on PostgreSQL answers like on SQLite, and concurrent writers stay consistent."""

from __future__ import annotations

import threading

import pytest
import zeep

from tests.conftest import DEMO_CONSUMER, start_bridge
from tests.soap_helpers import normalise, xroad_headers

pytestmark = pytest.mark.postgres


def test_bridge_serves_typed_lookups_and_changes_from_postgresql(pg_database, tmp_path, demo_world):  # type: ignore[no-untyped-def]
    bridge = start_bridge(tmp_path / "pg", database_url=pg_database)
    try:
        from viss_bridge.catalog.catalog import load_catalog

        catalog = load_catalog(bridge.catalog_dir)
        health = __import__("requests").get(f"{bridge.url}/health", timeout=5).json()
        assert health["store"]["url"].startswith("postgresql")
        client = zeep.Client(f"{bridge.xroad}?wsdl")
        for name, key_field in (("fpr_person", "person_code"), ("ur_company", "reg_number"),
                                ("vsaa_social_insurance", "person_code"), ("csdd_vehicle", "plate")):
            expected = demo_world[name][5]
            answer = getattr(client.service, name)(**{key_field: expected[key_field]},
                                                   _soapheaders=xroad_headers(DEMO_CONSUMER, catalog.get(name)))
            assert normalise(answer.body.record) == normalise(expected)
        native = zeep.Client(f"{bridge.catalog}?wsdl")
        page = native.service.getChanges(dataset="vzd_address", since=0, limit=1000,
                                         _soapheaders={"caller": {"client": DEMO_CONSUMER}})
        assert len(page.change) == len(demo_world["vzd_address"]) and not page.hasMore
    finally:
        bridge.stop()


def test_concurrent_upserts_on_postgresql_keep_one_row_per_key(pg_database):  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.manifest import parse_manifest
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    dataset = parse_manifest("dataset: counters\ntitle: {lv: a, en: b}\nowner: LV/GOV/1/X\nkey: [k]\n"
                             "fields:\n  - {name: k, type: string}\n  - {name: v, type: integer}\n", "counters.yaml")
    store = DatasetStore(make_engine(pg_database))
    store.create_schema()
    errors: list[BaseException] = []

    def writer(offset: int) -> None:
        try:
            for round_ in range(20):
                store.upsert(dataset, [{"k": f"key-{i}", "v": offset * 1000 + round_} for i in range(10)])
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert store.count(dataset) == 10
    changes = store.changes(dataset, 0, 1000)
    assert len({c.key for c in changes}) == len(changes) == 10
    # the last writer's values won for every key, as one consistent batch
    assert len({c.record["v"] for c in changes}) == 1
