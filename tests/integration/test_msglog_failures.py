"""Fail closed: a log store that cannot be written serves nothing; trusted time down too long refuses requests;
two nodes share one PostgreSQL with a chain each, and the verifier checks both."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
import requests
from sqlalchemy import create_engine, text

from tests.conftest import DEMO_CONSUMER, cli, free_port, start_bridge
from tests.msglog_helpers import TsaProcess, log_env, sqlite_rows
from tests.soap_helpers import parse_fault, post, xroad_lookup
from viss_bridge.msglog import MessageLog


@pytest.fixture(scope="module")
def person(demo_world) -> str:  # type: ignore[no-untyped-def]
    return demo_world["fpr_person"][0]["person_code"]


def lookup(bridge, demo_catalog, person: str, message_id: str | None = None) -> requests.Response:  # type: ignore[no-untyped-def]
    return post(bridge.xroad, xroad_lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": person},
                                           message_id or str(uuid.uuid4())))


def assert_logging_failed(response: requests.Response, person: str) -> None:
    fault = parse_fault(response)
    assert fault.code == "Server.ServerProxy.IOError.LoggingFailed", fault
    assert person.encode() not in response.content  # nothing served


def test_read_only_log_store_serves_nothing(tmp_path, dev_pki, demo_catalog, person) -> None:  # type: ignore[no-untyped-def]
    log_db = tmp_path / "msglog.sqlite"
    MessageLog(f"sqlite:///{log_db}", "node-1").open()  # the tables exist; this node may only read them
    bridge = start_bridge(tmp_path / "data", workers=1, ready_status=(503,),
                          extra_env=log_env(dev_pki, f"sqlite:///file:{log_db}?mode=ro&uri=true"))
    try:
        health = requests.get(f"{bridge.url}/health", timeout=5)
        assert health.status_code == 503 and health.json()["msglog"]["status"] == "unavailable"
        assert "readonly" in health.json()["msglog"]["error"]
        assert_logging_failed(lookup(bridge, demo_catalog, person), person)
    finally:
        bridge.stop()
    assert sqlite_rows(log_db, "SELECT COUNT(*) FROM msglog_record") == [(0,)]


def test_trusted_time_down_too_long_refuses_requests_then_recovers(tmp_path, dev_pki, demo_catalog, person) -> None:  # type: ignore[no-untyped-def]
    port = free_port()
    log_db = tmp_path / "msglog.sqlite"
    bridge = start_bridge(tmp_path / "data", workers=1, extra_env=log_env(
        dev_pki, f"sqlite:///{log_db}", f"http://127.0.0.1:{port}/", tsa_max_outage_seconds="1",
        seal_interval_ms="100"))
    tsa = None
    try:
        assert lookup(bridge, demo_catalog, person).status_code == 200  # logged; its seal cannot be time-stamped
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            response = lookup(bridge, demo_catalog, person)
            if response.status_code != 200:
                break
            time.sleep(0.2)
        fault = parse_fault(response)
        assert (fault.code, fault.status) == ("Server.ServerProxy.IOError.TimestampingFailed", 503)
        assert person.encode() not in response.content
        health = requests.get(f"{bridge.url}/health", timeout=5)
        assert health.status_code == 503
        assert health.json()["msglog"]["status"] == "refusing" and "time-stamping has failed" in health.json()["msglog"]["reason"]
        tsa = TsaProcess(dev_pki, port)  # trusted time is back: seals get tokens (late ones too), requests pass
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and requests.get(f"{bridge.url}/health", timeout=5).status_code != 200:
            time.sleep(0.2)
        assert lookup(bridge, demo_catalog, person).status_code == 200
        time.sleep(0.5)
        env = {**bridge.env(), **log_env(dev_pki, f"sqlite:///{log_db}", tsa.url)}
        cli("log", "seal", env=env)
        result = cli("log", "verify", "--require-timestamps", env=env, check=False)
        assert result.returncode == 0, result.stdout
    finally:
        bridge.stop()
        if tsa:
            tsa.stop()


@pytest.mark.postgres
def test_two_nodes_on_one_postgresql_each_keep_a_chain_and_fail_closed(tmp_path, pg_database, dev_pki, demo_catalog,
                                                                       person) -> None:  # type: ignore[no-untyped-def]
    nodes = {name: start_bridge(tmp_path / name, workers=2,
                                extra_env=log_env(dev_pki, pg_database, node_id=name, seal_every_records="8"))
             for name in ("node-1", "node-2")}
    admin = create_engine(pg_database.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    database = pg_database.rsplit("/", 1)[1]
    env = {**log_env(dev_pki, pg_database)}
    try:
        answered: list[str] = []

        def load(bridge) -> None:  # type: ignore[no-untyped-def]
            for _ in range(12):
                if lookup(bridge, demo_catalog, person).status_code == 200:
                    answered.append(bridge.url)

        threads = [threading.Thread(target=load, args=(b,)) for b in nodes.values() for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert len(answered) == 48
        for name in nodes:
            cli("log", "seal", env={**env, "VISS_BRIDGE_NODE_ID": name})
        result = cli("log", "verify", "--unsealed-grace", "60", env=env)
        assert "node node-1: records 1..48" in result.stdout and "node node-2: records 1..48" in result.stdout
        assert "LOG VALID: 2 node(s), 96 record(s)" in result.stdout

        # The log database goes away: nothing is served, /health says so; it comes back: serving resumes.
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false'))
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"))
        try:
            assert_logging_failed(lookup(nodes["node-1"], demo_catalog, person), person)
            assert requests.get(f"{nodes['node-1'].url}/health", timeout=10).status_code == 503
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
        assert lookup(nodes["node-1"], demo_catalog, person).status_code == 200

        # Tampering with node-2's chain is found and named; node-1 stays valid.
        with create_engine(pg_database).begin() as conn:
            conn.execute(text("UPDATE msglog_record SET body = convert_to('<x/>', 'UTF8') "
                              "WHERE node_id = 'node-2' AND seq = 5"))
        bad = cli("log", "verify", "--unsealed-grace", "60", env=env, check=False)
        assert bad.returncode == 1
        assert "first bad record node-2/5" in bad.stdout and "FAILED: first bad record node-1" not in bad.stdout
    finally:
        for bridge in nodes.values():
            bridge.stop()
        admin.dispose()
