"""The platform as a source (issue 13 item 5), over real HTTP with two real bridges on loopback.

Node B plays the platform: a production-like node (TLS, client certificates, no header trust) whose
``/rest`` face serves ``csdd_vehicle``. Node A holds datasets with ``source.kind: platform`` pointing
at B and reads them under its own connection (certificate, key and CA bundle from settings) and a
permission B granted it. A SOAP or REST answer on A equals B's record field by field, nested
structures included; both legs are in A's message log, B's log has its own exchange; B's 404 is
"not found", its 403 a precise fault; a platform that is down or hangs gives its precise fault
and the breaker opens; ``viss-bridge sync`` fills a replica through B's changes feed;
``catalog import-platform`` drafts manifests that validate and serve.
"""

from __future__ import annotations

import socket
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml
import zeep

from tests.access_helpers import Consumer, new_consumer, registry_for, start_tls_bridge
from tests.integration.test_answer_accounting import catalog_get_record
from tests.conftest import DEMO_CONSUMER, ROOT, RunningBridge, cli, free_port, start_bridge
from tests.soap_helpers import normalise, parse_fault, post, xroad_headers, xroad_lookup
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.catalog.values import record_to_python, to_json

REMOTE = "csdd_vehicle"
RESET_AFTER = 1.0


@dataclass
class Platform:
    node: RunningBridge
    connection: Consumer  # node A's connection on B: certificate + key
    permission: str  # the permission B granted A's connection for csdd_vehicle
    ca: str

    def rest(self, path: str, **params: Any) -> requests.Response:
        return requests.get(f"{self.node.url}/rest/{path}", params=params, cert=self.connection.cert,
                            verify=self.ca, headers={"X-DAGR-Permission": self.permission}, timeout=30)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory, pki) -> Iterator[Platform]:  # type: ignore[no-untyped-def]
    node = start_tls_bridge(tmp_path_factory.mktemp("platform-b"), pki, workers=1)
    try:
        connection = new_consumer(node, pki, "bridgea")
        registry = registry_for(node)
        number = registry.grant(connection.client_id, REMOTE, purpose="Platform source test",
                                legal_basis="Test").number
        registry.engine.dispose()
        yield Platform(node, connection, number, str(pki.ca.cert_path))
    finally:
        node.stop()


class Hang:
    """A TCP listener that completes handshakes and never answers: a platform that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def _manifest(name: str, url: str, mode: str = "live", **source: Any) -> dict[str, Any]:
    data = yaml.safe_load((ROOT / "viss_bridge/demo/catalog/csdd_vehicle.yaml").read_text())
    data["dataset"] = name
    data.pop("legacy", None)
    data["source"] = {"kind": "platform", "mode": mode, "url": url, "dataset": REMOTE, **source}
    if mode == "live":  # a live dataset has no records here to search (the manifest refuses indexes)
        data.pop("indexes", None)
    return data


@pytest.fixture(scope="module")
def hang() -> Iterator[Hang]:
    listener = Hang()
    yield listener
    listener.close()


@pytest.fixture(scope="module")
def node_a(tmp_path_factory: pytest.TempPathFactory, platform: Platform, hang: Hang) -> Iterator[RunningBridge]:
    env = platform_env(platform)
    # One worker: breakers are per process, so the test sees the one breaker it drives.
    node = start_bridge(tmp_path_factory.mktemp("node-a"), workers=1, size=40, extra_env=env)
    try:
        rest_url = f"{platform.node.url}/rest"
        manifests = {
            "platform_vehicle": _manifest("platform_vehicle", rest_url, permission=platform.permission),
            "platform_vehicle_replica": _manifest("platform_vehicle_replica", rest_url, "replicated",
                                                  permission=platform.permission, page_size=70),
            # fpr_person on B: A's connection holds no permission for it
            "platform_person_denied": {**_manifest("platform_person_denied", rest_url),
                                       "source": {"kind": "platform", "url": rest_url, "dataset": "fpr_person"}},
            "platform_vehicle_gone": _manifest("platform_vehicle_gone", f"https://127.0.0.1:{free_port()}/rest",
                                               retries={"attempts": 2, "backoff": 0.05},
                                               breaker={"failures": 2, "reset_after": RESET_AFTER}),
            "platform_vehicle_hang": _manifest("platform_vehicle_hang", f"https://127.0.0.1:{hang.port}/rest",
                                               timeouts={"connect": 2, "operation": 1}, provider="hanging"),
        }
        person = yaml.safe_load((ROOT / "viss_bridge/demo/catalog/fpr_person.yaml").read_text())
        manifests["platform_person_denied"]["fields"] = person["fields"]
        manifests["platform_person_denied"]["key"] = person["key"]
        manifests["platform_person_denied"]["subject"] = person["subject"]
        for name, manifest in manifests.items():
            (node.catalog_dir / f"{name}.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
            cli("clients", "grant", DEMO_CONSUMER, name, env=node.env())
        wait_for(node, *manifests)
        time.sleep(1.1)  # the permission cache (1 s) must see the new grants
        yield node
    finally:
        node.stop()


def platform_env(platform: Platform) -> dict[str, str]:
    cert, key = platform.connection.cert
    return {"VISS_BRIDGE_PLATFORM_CERT": cert, "VISS_BRIDGE_PLATFORM_KEY": key,
            "VISS_BRIDGE_PLATFORM_CA": platform.ca}


def wait_for(node: RunningBridge, *names: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if set(names) <= set(requests.get(node.url + "/", timeout=5).json()["datasets"]):
            return
        time.sleep(0.1)
    raise AssertionError(f"{names} not published:\n{node.log_text()}")


def log_rows(node: RunningBridge, where: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
    path = Path(node.database_url.removeprefix("sqlite:///")).with_name("bridge-msglog.sqlite")
    with sqlite3.connect(path, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(f"SELECT leg, direction, endpoint, dialect, client, service, status, message_id, "
                            f"exchange_id, fault_code, body FROM msglog_record WHERE {where} ORDER BY seq",
                            args).fetchall()


def rest_a(node: RunningBridge, path: str, **params: Any) -> requests.Response:
    return requests.get(f"{node.url}/rest/{path}", params=params, headers={"X-Road-Client": DEMO_CONSUMER},
                        timeout=30)


def b_records(platform: Platform) -> dict[str, Any]:
    """B's csdd_vehicle records straight from B's store, as JSON values."""
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    dataset = load_catalog(platform.node.catalog_dir).get(REMOTE)
    engine = make_engine(platform.node.database_url)
    try:
        changes = DatasetStore(engine).changes(dataset, 0, 100000)
    finally:
        engine.dispose()
    return {c.record["plate"]: to_json(c.record) for c in changes if c.record is not None}


def a_replica(node: RunningBridge) -> dict[str, Any]:
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    dataset = load_catalog(node.catalog_dir).get("platform_vehicle_replica")
    engine = make_engine(node.database_url)
    try:
        changes = DatasetStore(engine).changes(dataset, 0, 100000)
    finally:
        engine.dispose()
    current: dict[str, Any] = {}
    for change in changes:  # oldest first: the last state of each key wins
        if change.record is None:
            current.pop(change.key, None)
        else:
            current[change.key] = to_json(change.record)
    return current


def shape(fields: Any) -> Any:
    """Fields as the OpenAPI document carries them (it says nothing of ``required`` below the key)."""
    return [(f.name, f.type, f.items, f.enum, f.max_length, f.nillable, f.description,
             shape(f.fields) if f.fields else None) for f in fields]


# -- live ----------------------------------------------------------------------------------------

def test_live_answer_on_a_equals_the_platforms_record_field_by_field(node_a, platform) -> None:  # type: ignore[no-untyped-def]
    local = load_catalog(node_a.catalog_dir).get("platform_vehicle")
    feed = platform.rest(f"{REMOTE}/changes", limit=6).json()["changes"]
    soap = zeep.Client(f"{node_a.xroad}?wsdl&service=platform_vehicle")
    nested = 0
    for change in feed:
        plate = change["key"]["plate"]
        from_b = platform.rest(f"{REMOTE}/{plate}")
        assert from_b.status_code == 200, from_b.text
        # REST on A: the very JSON B answers (decimals as exact strings, dates, objects, lists)
        from_a = rest_a(node_a, f"platform_vehicle/{plate}")
        assert from_a.status_code == 200, from_a.text
        assert from_a.json() == from_b.json()
        # SOAP on A: the same record, typed, nested structures included
        answer = soap.service.platform_vehicle(plate=plate, _soapheaders=xroad_headers(DEMO_CONSUMER, local))
        assert normalise(answer.body.record) == normalise(record_to_python(local.fields, from_b.json()))
        nested += bool(from_b.json().get("owners")) and bool(from_b.json().get("technical"))
        # the catalog-native face reads it through the same guarded read
        native = post(node_a.catalog, catalog_get_record(DEMO_CONSUMER, "platform_vehicle", plate))
        assert native.status_code == 200 and from_b.json()["vin"].encode() in native.content, native.text
    assert nested  # objects and lists of objects were compared, not only flat records


def test_both_legs_in_a_log_and_bs_log_has_its_exchange_with_the_permission(node_a, platform) -> None:  # type: ignore[no-untyped-def]
    plate = platform.rest(f"{REMOTE}/changes", limit=1).json()["changes"][0]["key"]["plate"]
    answer = rest_a(node_a, f"platform_vehicle/{plate}")
    assert answer.status_code == 200, answer.text
    exchange = answer.headers["X-Exchange-Id"]
    rows = log_rows(node_a, "exchange_id = ?", (exchange,))
    # the provider leg commits while A answers; the consumer leg's two records before the answer leaves
    assert [(r["leg"], r["direction"]) for r in rows] == [("provider", "request"), ("provider", "response"),
                                                          ("consumer", "request"), ("consumer", "response")]
    provider = [r for r in rows if r["leg"] == "provider"]
    assert {r["dialect"] for r in provider} == {"rest"} and provider[0]["endpoint"].startswith("provider/platform-")
    sent, got = provider[0]["body"], provider[1]["body"]
    assert sent.startswith(f"GET /rest/{REMOTE}/{plate} HTTP/1.1\r\n".encode())
    assert f"X-DAGR-Permission: {platform.permission}\r\n".encode() in sent
    assert f"X-Road-Id: {exchange}\r\n".encode() in sent
    assert got.startswith(b"HTTP/1.1 200 OK\r\n") and provider[1]["status"] == 200
    assert got.endswith(answer.content)  # A answered exactly what B sent
    b_exchange = next(line.split(b": ", 1)[1].decode() for line in got.split(b"\r\n")
                      if line.lower().startswith(b"x-exchange-id:"))
    # B logged its own exchange: A's connection (proven by its certificate), under the permission sent
    on_b = log_rows(platform.node, "message_id = ?", (exchange,))
    assert [(r["leg"], r["direction"], r["endpoint"]) for r in on_b] == [("consumer", "request", "rest"),
                                                                         ("consumer", "response", "rest")]
    assert {r["exchange_id"] for r in on_b} == {b_exchange}
    assert {r["client"] for r in on_b} == {platform.connection.client_id}
    assert f"X-DAGR-Permission: {platform.permission}".encode() in on_b[1]["body"]
    # ... and counted the use on that permission
    registry = registry_for(platform.node)
    try:
        assert registry.permission(platform.permission).used >= 1
    finally:
        registry.engine.dispose()


def test_platform_404_is_not_found(node_a, platform) -> None:  # type: ignore[no-untyped-def]
    local = load_catalog(node_a.catalog_dir).get("platform_vehicle")
    answer = rest_a(node_a, "platform_vehicle/ZZ9999")
    assert answer.status_code == 404 and answer.json()["type"].endswith(":not-found"), answer.text
    rows = log_rows(node_a, "exchange_id = ? AND leg = 'provider' AND direction = 'response'",
                    (answer.headers["X-Exchange-Id"],))
    assert [r["status"] for r in rows] == [404]
    soap = post(node_a.xroad, xroad_lookup(local, DEMO_CONSUMER, {"plate": "ZZ9999"}))
    assert soap.status_code == 200 and b"<ds:record" not in soap.content and b"Fault" not in soap.content


def test_platform_refusing_the_connection_is_a_precise_fault(node_a, platform) -> None:  # type: ignore[no-untyped-def]
    local = load_catalog(node_a.catalog_dir).get("platform_person_denied")
    for _ in range(3):  # a refusal says nothing about the platform's health: the breaker stays closed
        fault = parse_fault(post(node_a.xroad, xroad_lookup(local, DEMO_CONSUMER, {"person_code": "010101-10000"})))
        assert fault.code == "Server.ServerProxy.ServiceFailed.PlatformAccessDenied", fault
        assert "403 access-denied" in fault.string and "circuit breaker" not in fault.string
    problem = rest_a(node_a, "platform_person_denied/010101-10000")
    assert problem.status_code == 502
    assert problem.json()["fault_code"] == "Server.ServerProxy.ServiceFailed.PlatformAccessDenied"


def test_platform_down_gives_precise_fault_then_the_breaker_opens(node_a) -> None:  # type: ignore[no-untyped-def]
    exchanges = []
    for _ in range(2):
        answer = rest_a(node_a, "platform_vehicle_gone/AB1234")
        assert answer.status_code == 502, answer.text
        assert answer.json()["fault_code"] == "Server.ServerProxy.ServiceFailed.ProviderUnavailable"
        assert "cannot be reached" in answer.json()["detail"]
        exchanges.append(answer.headers["X-Exchange-Id"])
    for exchange in exchanges:  # attempts: 2 -> a refused connection is tried twice, each try logged
        rows = log_rows(node_a, "exchange_id = ? AND leg = 'provider'", (exchange,))
        assert [r["direction"] for r in rows] == ["request", "response"] * 2
        assert all(r["fault_code"].startswith("error: ConnectionError") for r in rows if r["direction"] == "response")
    opened = rest_a(node_a, "platform_vehicle_gone/AB1234")
    assert opened.json()["fault_code"] == "Server.ServerProxy.ServiceFailed.ProviderUnavailable"
    assert "circuit breaker is open" in opened.json()["detail"]
    assert log_rows(node_a, "exchange_id = ? AND leg = 'provider'", (opened.headers["X-Exchange-Id"],)) == []
    health = requests.get(f"{node_a.url}/health", timeout=10).json()
    assert "open" in {p["breaker"] for p in health["providers"].values()}


def test_platform_that_hangs_times_out_without_retry(node_a) -> None:  # type: ignore[no-untyped-def]
    local = load_catalog(node_a.catalog_dir).get("platform_vehicle_hang")
    started = time.monotonic()
    response = post(node_a.xroad, xroad_lookup(local, DEMO_CONSUMER, {"plate": "AB1234"}))
    fault = parse_fault(response)
    assert fault.code == "Server.ServerProxy.ServiceFailed.ProviderTimeout", fault
    assert time.monotonic() - started < 20  # answered at the timeout, not never
    assert "did not answer" in fault.string


# -- replicated ----------------------------------------------------------------------------------

def test_sync_fills_the_replica_through_the_changes_feed_and_follows_changes(node_a, platform) -> None:  # type: ignore[no-untyped-def]
    env = {**node_a.env(), **platform_env(platform)}
    first = cli("sync", "platform_vehicle_replica", env=env)
    expected = b_records(platform)
    assert f"full sync, {-(-len(expected) // 70)} page(s), {len(expected)} record(s)" in first.stdout
    assert {k: v for k, v in a_replica(node_a).items()} == expected
    # the sync's calls to the platform are in A's log too, with the permission
    calls = log_rows(node_a, "leg = 'provider' AND direction = 'request' AND service LIKE ?",
                     ("%/changes",))
    assert calls and all(r["body"].startswith(f"GET /rest/{REMOTE}/changes?since=".encode()) for r in calls)
    assert all(f"X-DAGR-Permission: {platform.permission}".encode() in r["body"] for r in calls)

    # the platform changes one record and deletes another: an incremental sync copies exactly that
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    dataset = load_catalog(platform.node.catalog_dir).get(REMOTE)
    plates = sorted(expected)
    engine = make_engine(platform.node.database_url)
    try:
        store = DatasetStore(engine)
        changed = dict(store.get(dataset, {"plate": plates[0]}))
        changed["model"] = "Mainīts"
        store.upsert(dataset, [changed])
        store.delete(dataset, {"plate": plates[1]})
    finally:
        engine.dispose()
    again = cli("sync", "platform_vehicle_replica", env=env)
    assert "incremental sync, 1 page(s), 2 record(s)" in again.stdout, again.stdout
    replica = a_replica(node_a)
    assert replica == b_records(platform)
    assert replica[plates[0]]["model"] == "Mainīts" and plates[1] not in replica
    # the replica is served from A's store: a SOAP answer on A without calling B
    local = load_catalog(node_a.catalog_dir).get("platform_vehicle_replica")
    before = len(log_rows(platform.node, "1 = 1", ()))
    answer = post(node_a.xroad, xroad_lookup(local, DEMO_CONSUMER, {"plate": plates[0]}))
    assert answer.status_code == 200 and "Mainīts".encode() in answer.content
    assert len(log_rows(platform.node, "1 = 1", ())) == before


# -- import-platform -----------------------------------------------------------------------------

def test_import_platform_drafts_manifests_that_validate_and_serve(node_a, platform, tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**node_a.env(), **platform_env(platform)}
    out = tmp_path / "drafts"
    result = cli("catalog", "import-platform", f"{platform.node.url}/rest", "--out", str(out), "--prefix", "imported_",
                 env=env)
    drafted = sorted(p.stem for p in out.glob("*.yaml"))
    assert "imported_csdd_vehicle" in drafted and "imported_fpr_person" not in drafted  # only what A may read
    assert "imported_csdd_vehicle" in result.stdout
    text = (out / "imported_csdd_vehicle.yaml").read_text()
    assert "kind: platform" in text and f"permission: {platform.permission}\n" in text
    assert "TODO(decide)" in text
    assert "valid" in cli("catalog", "validate", str(out), env=env).stdout
    drafted_dataset = load_catalog(out).get("imported_csdd_vehicle")
    original = load_catalog(platform.node.catalog_dir).get(REMOTE)
    assert shape(drafted_dataset.fields) == shape(original.fields) and drafted_dataset.key == original.key

    (node_a.catalog_dir / "imported_csdd_vehicle.yaml").write_text(text)
    cli("clients", "grant", DEMO_CONSUMER, "imported_csdd_vehicle", env=node_a.env())
    wait_for(node_a, "imported_csdd_vehicle")
    time.sleep(1.1)
    plate = platform.rest(f"{REMOTE}/changes", limit=3).json()["changes"][2]["key"]["plate"]
    from_a = rest_a(node_a, f"imported_csdd_vehicle/{plate}")
    assert from_a.status_code == 200, from_a.text
    assert from_a.json() == platform.rest(f"{REMOTE}/{plate}").json()
