"""Issue 9.5: a person's restriction follows the register, not one dataset's name: after restricting
``fpr_person`` the person's record is withheld from its replica and its live view too (over real HTTP)."""

from __future__ import annotations

import time
from typing import Any, Iterator

import pytest
import yaml

from tests.access_helpers import answer_body, fault_of, lookup, new_consumer, record_of, registry_for, start_tls_bridge
from tests.access_helpers import tracker_request
from tests.conftest import RunningBridge, cli
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.demo.legacy_catalog import legacy_manifest

PORTAL = "LV/GOV/90000010008/LATVIJA-LV"  # the demo's person portal, granted the data tracker
DT = "{http://vissbridge.gov.lv/xroad/datatracker}"
COPIES = ("fpr_person", "fpr_person_replica", "fpr_person_live")


@pytest.fixture(scope="module")
def copies_bridge(tmp_path_factory: pytest.TempPathFactory, pki, persons_provider) -> Iterator[RunningBridge]:  # type: ignore[no-untyped-def]
    """A production-configured node serving fpr_person, its replica (synced) and its live view."""
    bridge = start_tls_bridge(tmp_path_factory.mktemp("copies-bridge"), pki, workers=1)
    try:
        for mode in ("replicated", "live"):
            manifest = legacy_manifest("persons", persons_provider.url, mode)
            (bridge.catalog_dir / f"{manifest['dataset']}.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
        cli("sync", "fpr_person_replica", env=bridge.env())
        yield bridge
    finally:
        bridge.stop()


def _read(bridge: RunningBridge, consumer: Any, dataset: Any, person: str) -> Any:
    return consumer.post(bridge.xroad, lookup(dataset, consumer.client_id, {"person_code": person}))


def test_a_restriction_covers_every_copy_of_the_register(copies_bridge, pki, demo_world):  # type: ignore[no-untyped-def]
    bridge = copies_bridge
    catalog = load_catalog(bridge.catalog_dir)
    datasets = [catalog.get(name) for name in COPIES]
    portal = new_consumer(bridge, pki, "portal", client_id=PORTAL)
    bank = new_consumer(bridge, pki, "bank")
    registry = registry_for(bridge)
    for name in COPIES:
        registry.grant(bank.client_id, name, purpose="customer due diligence", legal_basis="customer consent")
    registry.engine.dispose()
    person = demo_world["fpr_person"][42]
    code = person["person_code"]

    deadline = time.monotonic() + 30  # the bridge publishes the two new manifests within its reload interval
    while True:
        answers = [_read(bridge, bank, d, code) for d in datasets]
        if all(a.status_code == 200 for a in answers) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert [record_of(a)["last_name"] for a in answers] == [person["last_name"]] * 3

    restricted = answer_body(portal.post(bridge.xroad, tracker_request(
        portal.client_id, "restrictDistribution", "LV" + code, dataset="fpr_person", reason="I object")))
    for d in datasets:  # the store copy, the replica and the live view all withhold the record
        hidden = _read(bridge, bank, d, code)
        assert fault_of(hidden)[0] == "Server.ServerProxy.AccessDenied.SubjectRestriction", d.dataset
        assert person["last_name"] not in hidden.text
    assert restricted.findtext(f"{DT}restriction/{DT}register") == "LV/GOV/90000100015/FPR/persons"
    assert {d.register_key for d in datasets} == {"LV/GOV/90000100015/FPR/persons"}
    other = demo_world["fpr_person"][43]
    assert record_of(_read(bridge, bank, datasets[1], other["person_code"]))["last_name"] == other["last_name"]

    # lifted through another copy of the register: lifted for all
    portal.post(bridge.xroad, tracker_request(portal.client_id, "liftRestriction", code, dataset="fpr_person_live"))
    assert [record_of(_read(bridge, bank, d, code))["last_name"] for d in datasets] == [person["last_name"]] * 3

    # the CLI (support staff) restricting the replica covers the other copies too
    out = cli("access", "restrict", code, "fpr_person_replica", env=bridge.env()).stdout
    assert "LV/GOV/90000100015/FPR/persons" in out
    assert fault_of(_read(bridge, bank, datasets[0], code))[0] == "Server.ServerProxy.AccessDenied.SubjectRestriction"
    cli("access", "lift", code, "fpr_person", env=bridge.env())
    assert record_of(_read(bridge, bank, datasets[2], code))["last_name"] == person["last_name"]


def test_a_restriction_made_before_the_register_was_declared_covers_it_once_published(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Old rows (no register column, or keyed by the dataset name) are adopted by the declared register."""
    from sqlalchemy import text

    from viss_bridge.access.registry import AccessRegistry
    from viss_bridge.access.tracker import DataTracker
    from viss_bridge.db import make_engine
    from viss_bridge.demo.legacy_catalog import DEMO_CATALOG_DIR

    engine = make_engine(f"sqlite:///{tmp_path / 'old.sqlite'}")
    with engine.begin() as conn:  # the table as it was before registers
        conn.execute(text("CREATE TABLE person_restrictions (id INTEGER PRIMARY KEY AUTOINCREMENT, person VARCHAR(64) "
                          "NOT NULL, dataset VARCHAR(64) NOT NULL, reason VARCHAR(1000), created_at DATETIME NOT NULL, "
                          "created_by VARCHAR(255) NOT NULL, lifted_at DATETIME, lifted_by VARCHAR(255))"))
        conn.execute(text("INSERT INTO person_restrictions (person, dataset, created_at, created_by) "
                          "VALUES ('01019010009', 'fpr_person', '2026-01-01 00:00:00', 'person:01019010009')"))
    registry = AccessRegistry(engine)
    registry.create_schema()
    tracker = DataTracker(engine, registry.audit)
    stored = load_catalog(DEMO_CATALOG_DIR).get("fpr_person")
    replica = stored.model_copy(update={"dataset": "fpr_person_replica"})
    assert tracker.restricted(stored, ["010190-10009"]) == {"010190-10009"}
    assert tracker.restricted(replica, ["010190-10009"]) == set()
    assert tracker.adopt_registers([stored]) == 1
    assert tracker.restricted(replica, ["010190-10009"]) == {"010190-10009"}
    assert [r.register for r in tracker.restrictions()] == ["LV/GOV/90000100015/FPR/persons"]
