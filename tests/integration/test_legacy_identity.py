"""Issue 9.1: on a production-configured node a /legacy contract's ``consumer`` stands only for callers the
operator vouches for (authenticated as it, or from a ``consumer_networks`` network); anyone else is anonymous."""

from __future__ import annotations

import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
import zeep
import zeep.exceptions

from tests.access_helpers import new_consumer
from tests.conftest import cli
from tests.legacy_helpers import PERSONS_WSDL

ROOT = Path(__file__).resolve().parents[2]


def _contract(bridge, name: str, consumer: str, networks: list[str] | None) -> str:  # type: ignore[no-untyped-def]
    contract = yaml.safe_load((ROOT / "viss_bridge/demo/contracts/fpr.yaml").read_text())
    contract["wsdl"] = str(PERSONS_WSDL)
    contract["consumer"] = consumer
    contract.pop("consumer_networks", None)
    if networks is not None:
        contract["consumer_networks"] = networks
    (bridge.catalog_dir / "legacy" / f"{name}.yaml").write_text(yaml.safe_dump(contract, allow_unicode=True))
    return f"{bridge.url}/legacy/{name}"


def _client(address: str, verify: str, cert: Any = None) -> Any:
    session = requests.Session()
    session.trust_env = False
    session.verify = verify
    session.cert = cert
    client = zeep.Client(str(PERSONS_WSDL), transport=zeep.Transport(session=session))
    service = next(iter(client.wsdl.services.values()))
    port = next(iter(service.ports.values()))
    return client.create_service(port.binding.name, address)


def _rows(path: Path, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def test_an_unauthenticated_caller_is_not_served_as_the_mappings_consumer(tls_bridge, pki, demo_world):  # type: ignore[no-untyped-def]
    consumer = new_consumer(tls_bridge, pki, "oldclient")
    env = tls_bridge.env()
    cli("clients", "grant", consumer.client_id, "fpr_person", env=env)
    tag = uuid.uuid4().hex[:6]
    bare = _contract(tls_bridge, f"bare{tag}", consumer.client_id, None)
    elsewhere = _contract(tls_bridge, f"far{tag}", consumer.client_id, ["10.20.0.0/16"])
    vouched = _contract(tls_bridge, f"near{tag}", consumer.client_id, ["127.0.0.0/8", "::1/128"])
    verify = str(pki.ca.cert_path)
    person = demo_world["fpr_person"][3]["person_code"]
    store = Path(tls_bridge.database_url.removeprefix("sqlite:///"))
    usage = lambda: _rows(store, "SELECT count(*) FROM usage_entries WHERE client_id = ?",  # noqa: E731
                          (consumer.client_id,))[0][0]

    deadline = time.monotonic() + 30  # the contracts folder is re-read on the next request
    while True:
        try:  # authenticated as the consumer's connection (its TLS client certificate): served as it
            assert _client(bare, verify, consumer.cert).GetPerson(PersonCode=person).PersonCode == person
            break
        except zeep.exceptions.Fault as fault:
            assert time.monotonic() < deadline, fault.message
            time.sleep(0.3)
    before = usage()

    # no certificate and not from a vouched-for network: anonymous, and fpr_person is restricted
    for address in (bare, elsewhere):
        anonymous = _client(address, verify)
        with pytest.raises(zeep.exceptions.Fault) as refused:
            anonymous.GetPerson(PersonCode=person)
        assert refused.value.code == "Server.ServerProxy.AccessDenied" and "anonymous" in refused.value.message
        with pytest.raises(zeep.exceptions.Fault) as refused:
            anonymous.GetPersonChanges(ChangedSince="1970-01-01T00:00:00Z", PageSize=100)
        assert refused.value.code == "Server.ServerProxy.AccessDenied" and "anonymous" in refused.value.message

    # nothing of those reads is put down to the consumer: not in the data tracker, not in the message log
    assert usage() == before
    log_db = store.with_name(f"{store.stem}-msglog{store.suffix}")
    deadline = time.monotonic() + 30
    while True:
        logged = _rows(log_db, "SELECT service, client, fault_code FROM msglog_record WHERE direction = 'response' "
                               "AND (service LIKE ? OR service LIKE ?)", (f"legacy/bare{tag}/%", f"legacy/far{tag}/%"))
        if len(logged) >= 5 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    anonymous_rows = [row for row in logged if row[2]]
    assert len(anonymous_rows) == 4, logged
    assert all(row[1] != consumer.client_id for row in anonymous_rows), logged

    # from a network the mapping vouches for (here loopback), an unauthenticated caller stands for the consumer
    assert _client(vouched, verify).GetPerson(PersonCode=person).PersonCode == person
    assert usage() == before + 1


def test_consumer_networks_needs_a_consumer_and_valid_networks(tmp_path: Path) -> None:
    from viss_bridge.catalog.manifest import ManifestError
    from viss_bridge.facade.legacy_contract import load_contract

    contract = yaml.safe_load((ROOT / "viss_bridge/demo/contracts/fpr.yaml").read_text())
    contract["wsdl"] = str(PERSONS_WSDL)
    for change, words in (({"consumer": None}, "needs a consumer"), ({"consumer_networks": ["10.0.0.300/8"]}, "")):
        broken = dict(contract, **change)
        if broken.get("consumer") is None:
            broken.pop("consumer")
        (tmp_path / "x.yaml").write_text(yaml.safe_dump(broken))
        with pytest.raises(ManifestError) as refused:
            load_contract(tmp_path / "x.yaml")
        assert "consumer_networks" in str(refused.value) and words in str(refused.value)
