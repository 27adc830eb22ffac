"""What an answer leaves behind besides itself (issue 9, items 6, 11, 13).

- An answer refused with LoggingFailed spends no quota and writes no data-tracker entry: counting and
  tracking commit only with the answer's message-log records (SQLite and PostgreSQL).
- Callers cannot grow /metrics: service names that are not configured share one label value.
- The log line with an InternalError's traceback carries the fault's UUID (faultDetail).
"""

from __future__ import annotations

import json
import re
import sqlite3
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.access_helpers import registry_for
from tests.conftest import DEMO_CONSUMER, RunningBridge, start_bridge
from tests.soap_helpers import parse_fault, post, xroad_lookup
from viss_bridge.access.tracker import DataTracker
from viss_bridge.db import make_engine

LOGGING_FAILED = "Server.ServerProxy.IOError.LoggingFailed"
CATALOG_TNS = "http://vissbridge.gov.lv/catalog"


def catalog_get_record(client: str, dataset: str, key: str) -> bytes:
    return (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:c="{CATALOG_TNS}">'
            f'<s:Header><c:caller><c:client>{client}</c:client></c:caller></s:Header>'
            f'<s:Body><c:getRecord><c:dataset>{dataset}</c:dataset><c:key>{key}</c:key></c:getRecord></s:Body>'
            f'</s:Envelope>').encode()


class LogSwitch:
    """Makes the bridge's message log refuse appends (a trigger in the log's own database), and back."""

    def __init__(self, bridge: RunningBridge) -> None:
        self.url = bridge.database_url
        self.pg = self.url.startswith("postgresql")
        self.log_file = None if self.pg else Path(self.url.removeprefix("sqlite:///")).with_name("bridge-msglog.sqlite")

    def _run(self, *statements: str) -> None:
        if self.pg:
            engine = create_engine(self.url)
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(text(statement))
            engine.dispose()
        else:
            assert self.log_file is not None and self.log_file.exists()
            with sqlite3.connect(self.log_file, timeout=30) as conn:
                for statement in statements:
                    conn.execute(statement)

    def break_(self) -> None:
        if self.pg:
            self._run("CREATE OR REPLACE FUNCTION test_refuse_log() RETURNS trigger LANGUAGE plpgsql AS "
                      "$$ BEGIN RAISE EXCEPTION 'message log refused by the test'; END $$",
                      "CREATE TRIGGER test_refuse_log BEFORE INSERT ON msglog_record "
                      "FOR EACH ROW EXECUTE FUNCTION test_refuse_log()")
        else:
            self._run("CREATE TRIGGER test_refuse_log BEFORE INSERT ON msglog_record "
                      "BEGIN SELECT RAISE(ABORT, 'message log refused by the test'); END")

    def repair(self) -> None:
        self._run("DROP TRIGGER test_refuse_log" + (" ON msglog_record" if self.pg else ""))


def quota_client(bridge: RunningBridge, label: str, quota: int) -> tuple[str, str, Any]:
    registry = registry_for(bridge)
    client = f"LV/GOV/90000055555/{label}"
    registry.add_client(client, "accounting test")
    permission = registry.grant(client, "fpr_person", purpose="accounting", legal_basis="law", quota=quota)
    return client, permission.number, registry


def entries(bridge: RunningBridge, person: str, client: str) -> int:
    engine = make_engine(bridge.database_url)
    try:
        return len([e for e in DataTracker(engine).usage(person)[0] if e.client_id == client])
    finally:
        engine.dispose()


def check_refused_answers_are_not_counted(bridge: RunningBridge, demo_world: dict[str, Any], label: str) -> None:
    from viss_bridge.catalog.catalog import load_catalog

    dataset = load_catalog(bridge.catalog_dir).get("fpr_person")
    client, number, registry = quota_client(bridge, label, quota=5)
    person = demo_world["fpr_person"][3]["person_code"]
    other = demo_world["fpr_person"][4]["person_code"]
    switch = LogSwitch(bridge)

    assert post(bridge.xroad, xroad_lookup(dataset, client, {"person_code": person})).status_code == 200
    assert registry.permission(number).used == 1 and entries(bridge, person, client) == 1

    switch.break_()
    try:
        for face, body in (("xroad", xroad_lookup(dataset, client, {"person_code": person})),
                           ("catalog", catalog_get_record(client, "fpr_person", person))):
            response = post(f"{bridge.url}/{face}", body)
            fault = parse_fault(response)
            assert fault.code == LOGGING_FAILED, (face, fault)
            assert person.encode() not in response.content
        assert registry.permission(number).used == 1  # no quota spent on refused answers
        assert entries(bridge, person, client) == 1  # and no false "your data was read" entry
    finally:
        switch.repair()

    # The log is back: the next answers count exactly once each, on both faces.
    assert post(bridge.xroad, xroad_lookup(dataset, client, {"person_code": other})).status_code == 200
    response = post(bridge.catalog, catalog_get_record(client, "fpr_person", other))
    assert response.status_code == 200 and other.encode() in response.content, response.text[:500]
    assert registry.permission(number).used == 3
    assert entries(bridge, other, client) == 2 and entries(bridge, person, client) == 1


@pytest.fixture(scope="module")
def own_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    bridge = start_bridge(tmp_path_factory.mktemp("accounting"), workers=2, size=40)
    yield bridge
    bridge.stop()


def test_refused_answers_are_not_counted_sqlite(own_bridge, demo_world) -> None:  # type: ignore[no-untyped-def]
    check_refused_answers_are_not_counted(own_bridge, demo_world, "ACCOUNT-SQLITE")


@pytest.mark.postgres
def test_refused_answers_are_not_counted_postgresql(pg_database, tmp_path, demo_world) -> None:  # type: ignore[no-untyped-def]
    bridge = start_bridge(tmp_path / "pg-accounting", database_url=pg_database, workers=2, size=40)
    try:
        check_refused_answers_are_not_counted(bridge, demo_world, "ACCOUNT-PG")
    finally:
        bridge.stop()


def label_sets(metrics: str) -> set[str]:
    return {line.split(" ")[0] for line in metrics.splitlines() if line and not line.startswith("#")}


def test_bogus_service_codes_share_one_metrics_label(bridge, demo_catalog, demo_world) -> None:  # type: ignore[no-untyped-def]
    person = demo_world["fpr_person"][0]["person_code"]
    real = xroad_lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": person})

    def bogus(i: int) -> None:
        code = f"bogus{i}x{uuid.uuid4().hex[:8]}"
        response = post(bridge.xroad, real.replace(b"fpr_person", code.encode()))
        assert parse_fault(response).code == "Server.ServerProxy.UnknownService"
        response = post(bridge.catalog, catalog_get_record(DEMO_CONSUMER, "x", "y").replace(b"getRecord", code.encode()))
        assert parse_fault(response).code == "Server.ServerProxy.UnknownService"

    assert post(bridge.xroad, real).status_code == 200
    bogus(0)  # the one shared label set exists from here on
    before = requests.get(f"{bridge.url}/metrics", timeout=10).text
    for i in range(1, 31):
        bogus(i)
    after = requests.get(f"{bridge.url}/metrics", timeout=10).text
    grown = label_sets(after) - label_sets(before)
    assert not grown, sorted(grown)[:10]
    assert "bogus" not in after
    assert re.search(r'viss_bridge_requests_total\{endpoint="xroad",outcome="fault",service="unknown"\}', after) or \
        re.search(r'viss_bridge_requests_total\{endpoint="xroad",service="unknown",outcome="fault"\}', after), after[:2000]
    assert 'service="fpr_person"' in after  # configured names keep their own label


def test_internal_error_traceback_carries_the_fault_id(own_bridge, demo_world) -> None:  # type: ignore[no-untyped-def]
    """A store row that is not JSON (a real broken row) makes an InternalError; its traceback names the fault id."""
    from viss_bridge.catalog.catalog import load_catalog

    dataset = load_catalog(own_bridge.catalog_dir).get("fpr_person")
    person = demo_world["fpr_person"][7]["person_code"]
    engine = make_engine(own_bridge.database_url)
    try:
        with engine.begin() as conn:
            changed = conn.execute(text("UPDATE dataset_records SET data = '{broken' WHERE dataset = 'fpr_person' "
                                        "AND data LIKE :code"), {"code": f"%{person}%"}).rowcount
        assert changed == 1
    finally:
        engine.dispose()
    fault = parse_fault(post(own_bridge.xroad, xroad_lookup(dataset, DEMO_CONSUMER, {"person_code": person})))
    assert fault.code == "Server.ServerProxy.ServiceFailed.InternalError", fault
    uuid.UUID(fault.detail)
    lines = [json.loads(line) for line in own_bridge.log_text().splitlines() if line.startswith("{")]
    tracebacks = [line for line in lines if "JSONDecodeError" in line.get("exception", "")]
    assert tracebacks, own_bridge.log_text()[-3000:]
    assert [line.get("fault_id") for line in tracebacks] == [fault.detail]


VID = "LV/GOV/90000069281/VID-EDS"  # granted fpr_person in the demo


def test_refused_viss_answers_are_not_counted(tmp_path, demo_world) -> None:  # type: ignore[no-untyped-def]
    """/viss (SOAP 1.2, WS-Security, no Spyne) counts through the same mechanism as /xroad and /catalog."""
    import yaml
    from lxml import etree

    from tests.viss_helpers import PERSON_URN, envelope, parse_fault12, post12, q, sign, start_transaction, submit_sync
    from viss_bridge.security.keys import SigningKey
    from viss_bridge.security.pki import init_dev_pki

    pki = init_dev_pki(tmp_path / "pki")
    consumers = tmp_path / "viss-consumers.yaml"
    consumers.write_text(yaml.safe_dump({"consumers": [
        {"client": VID, "participant": "AU:90000069281", "cert": str(pki.consumers[VID].cert)}]}))
    bridge = start_bridge(tmp_path / "data", workers=1, size=40, extra_env={
        "VISS_BRIDGE_VISS_TRUST_CA": str(pki.ca_cert), "VISS_BRIDGE_VISS_CONSUMERS": str(consumers),
        "VISS_BRIDGE_VISS_SIGNING_CERT": str(pki.node.cert), "VISS_BRIDGE_VISS_SIGNING_KEY": str(pki.node.key)})
    try:
        url = f"{bridge.url}/viss"
        key = SigningKey.from_identity(pki.consumers[VID])
        started = post12(url, sign(envelope("StartTransaction", start_transaction(PERSON_URN), url), key))
        assert started.status_code == 200, started.text
        transaction = etree.fromstring(started.content).findtext(f".//{q('TransactionID')}")
        registry = registry_for(bridge)
        number = next(p.number for p in registry.permissions(client_id=VID) if p.dataset == "fpr_person")
        used = registry.permission(number).used
        person = demo_world["fpr_person"][5]["person_code"]

        def submit() -> requests.Response:
            return post12(url, sign(envelope("SubmitSync", submit_sync(transaction, PERSON_URN,
                                                                       {"person_code": person}), url), key))

        switch = LogSwitch(bridge)
        switch.break_()
        try:
            fault = parse_fault12(submit())
            assert fault.code == LOGGING_FAILED, fault
        finally:
            switch.repair()
        assert registry.permission(number).used == used and entries(bridge, person, VID) == 0
        response = submit()
        assert response.status_code == 200, response.text
        assert registry.permission(number).used == used + 1 and entries(bridge, person, VID) == 1
    finally:
        bridge.stop()
