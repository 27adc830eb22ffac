"""Signed messages over real HTTP: freshness counts from Created, and a replay is refused for as long as it
could otherwise be accepted, on /viss (wsa:MessageID) and on /xroad (the signed X-Road ``id``), by every
worker and every node on the same database."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml
from lxml import etree
from sqlalchemy import MetaData, Table, delete, inspect

from tests.access_helpers import XROAD_SIGNED, fault_of, record_of, registry_for
from tests.conftest import RunningBridge, start_bridge
from tests.soap_helpers import NS_SOAP11, xroad_lookup
from tests.viss_helpers import (NS_SOAP12, NS_WSA, PERSON_URN, envelope, parse_fault12, post12, q, start_transaction,
                                submit_sync)

VID = "LV/GOV/90000069281/VID-EDS"  # granted fpr_person in the demo


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from viss_bridge.security.pki import init_dev_pki

    return init_dev_pki(tmp_path_factory.mktemp("wss-pki"))


def _security_env(pki: Any, folder: Path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    consumers = folder / "viss-consumers.yaml"
    consumers.write_text(yaml.safe_dump({"consumers": [
        {"client": VID, "participant": "AU:90000069281", "cert": str(pki.consumers[VID].cert)}]}))
    return {"VISS_BRIDGE_VISS_TRUST_CA": str(pki.ca_cert), "VISS_BRIDGE_VISS_CONSUMERS": str(consumers),
            "VISS_BRIDGE_WSS_TRUST_CA": str(pki.ca_cert), "VISS_BRIDGE_TRUST_CLIENT_HEADER": "false"}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, pki) -> Iterator[RunningBridge]:  # type: ignore[no-untyped-def]
    """Two gunicorn workers; VID-EDS signs /viss messages (consumer file) and /xroad requests (its connection)."""
    from viss_bridge.access.identity import CertificateInfo

    folder = tmp_path_factory.mktemp("wss-node")
    bridge = start_bridge(folder / "data", workers=2, extra_env=_security_env(pki, folder))
    registry = registry_for(bridge)
    registry.add_client(VID, "State Revenue Service")
    registry.add_certificate(VID, CertificateInfo.from_pem(Path(pki.consumers[VID].cert).read_bytes()), actor="test")
    registry.grant(VID, "fpr_person")
    registry.engine.dispose()
    yield bridge
    bridge.stop()


def _key(pki):  # type: ignore[no-untyped-def]
    from viss_bridge.security.keys import SigningKey

    return SigningKey.from_identity(pki.consumers[VID])


def _ago(seconds: float) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=seconds)


def _sign(env: etree._Element, key: Any, headers: tuple[str, ...], soap_ns: str, created: dt.datetime | None = None,
          ttl: int = 300, with_timestamp: bool = True) -> bytes:
    from viss_bridge.security.wssecurity import sign_envelope

    options = {} if with_timestamp else {"with_timestamp": False}
    sign_envelope(env, key, soap_ns=soap_ns, sign_headers=headers, now=created, ttl_seconds=ttl, **options)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


# -- /viss -----------------------------------------------------------------------------------

VISS_SIGNED = tuple(f"{{{NS_WSA}}}{n}" for n in ("Action", "MessageID", "To"))


def _viss(bridge: RunningBridge) -> str:
    return f"{bridge.url}/viss"


def _submit(bridge: RunningBridge, pki: Any, person: str, created: dt.datetime | None = None,
            ttl: int = 300) -> bytes:
    """A signed SubmitSync in a freshly opened transaction, its Timestamp created at ``created``."""
    key = _key(pki)
    opened = post12(_viss(bridge), _sign(envelope("StartTransaction", start_transaction(PERSON_URN), _viss(bridge)),
                                         key, VISS_SIGNED, NS_SOAP12))
    assert opened.status_code == 200, opened.text
    transaction = etree.fromstring(opened.content).findtext(f".//{q('TransactionID')}")
    message = envelope("SubmitSync", submit_sync(transaction, PERSON_URN, {"person_code": person}), _viss(bridge))
    return _sign(message, key, VISS_SIGNED, NS_SOAP12, created=created, ttl=ttl)


def test_viss_old_created_with_a_far_expires_is_refused(node, pki, demo_world):  # type: ignore[no-untyped-def]
    person = demo_world["fpr_person"][1]["person_code"]
    stale = _submit(node, pki, person, created=_ago(2 * 3600), ttl=4 * 3600)  # "valid" for two more hours
    fault = parse_fault12(post12(_viss(node), stale))
    assert (fault.status, fault.code) == (400, "Client.Security.MessageExpired")
    assert "Expires beyond the allowed maximum" in fault.reason


def test_viss_expires_beyond_the_maximum_is_refused(node, pki, demo_world):  # type: ignore[no-untyped-def]
    person = demo_world["fpr_person"][2]["person_code"]
    fault = parse_fault12(post12(_viss(node), _submit(node, pki, person, ttl=3600)))  # created now, Expires in 1 h
    assert fault.code == "Client.Security.MessageExpired" and "Expires beyond the allowed maximum" in fault.reason


def _purge_as_of(bridge: RunningBridge, moment: dt.datetime) -> int:
    """Run the replay table's purge as a worker would at ``moment`` (the future, without waiting for it)."""
    from viss_bridge.db import make_engine

    engine = make_engine(bridge.database_url)
    removed = 0
    try:
        present = set(inspect(engine).get_table_names())
        for name in ("wss_seen_messages", "viss_seen_messages"):  # today's table, and the one before it
            if name in present:
                table = Table(name, MetaData(), autoload_with=engine)
                with engine.begin() as conn:
                    removed += conn.execute(delete(table).where(table.c.forget_after < moment)).rowcount
    finally:
        engine.dispose()
    return removed


def test_viss_replay_after_the_old_forget_time_is_refused(node, pki, demo_world):  # type: ignore[no-untyped-def]
    person = demo_world["fpr_person"][3]["person_code"]
    # Created 250 s ago, inside the 300 s max age: served once.
    message = _submit(node, pki, person, created=_ago(250))
    assert post12(_viss(node), message).status_code == 200
    # The purge at the last moment such a message could still be accepted keeps its id: a replay is refused.
    _purge_as_of(node, _ago(250 - 300))
    assert parse_fault12(post12(_viss(node), message)).code == "Client.Security.Replay"

    # A message created 250 s ago that claims to be valid for hours. Once the ids seen are purged, as of the
    # moment a table keeping ids for twice 300 s would forget it, a copy must still be refused.
    long_lived = _submit(node, pki, person, created=_ago(250), ttl=3 * 3600)
    first = post12(_viss(node), long_lived)
    _purge_as_of(node, _ago(-601))
    replay = post12(_viss(node), long_lived)
    assert replay.status_code == 400, "a replay after the replay table's purge was served"
    assert parse_fault12(replay).code == "Client.Security.MessageExpired"
    assert first.status_code == 400  # and in fact the message was never acceptable


# -- /xroad ----------------------------------------------------------------------------------

def _xroad_request(demo_catalog: Any, person: str, message_id: str | None = None) -> etree._Element:
    return etree.fromstring(xroad_lookup(demo_catalog.get("fpr_person"), VID, {"person_code": person},
                                         message_id=message_id))


def _signed_xroad(pki: Any, demo_catalog: Any, person: str, message_id: str | None = None, **kwargs: Any) -> bytes:
    return _sign(_xroad_request(demo_catalog, person, message_id), _key(pki), XROAD_SIGNED, NS_SOAP11, **kwargs)


def _post(url: str, body: bytes) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": "text/xml; charset=utf-8"}, timeout=30)


def test_xroad_old_created_with_a_far_expires_is_refused(node, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    person = demo_world["fpr_person"][4]["person_code"]
    code, text = fault_of(_post(node.xroad, _signed_xroad(pki, demo_catalog, person, created=_ago(2 * 3600),
                                                          ttl=4 * 3600)))
    assert code == "Client.Security.MessageExpired" and "Expires beyond the allowed maximum" in text
    code, text = fault_of(_post(node.xroad, _signed_xroad(pki, demo_catalog, person, ttl=3600)))
    assert code == "Client.Security.MessageExpired" and "Expires beyond the allowed maximum" in text
    # Expires at the allowed maximum (Created + 300 s + 60 s skew, 40 s ago: within the skew) cannot extend the age
    code, text = fault_of(_post(node.xroad, _signed_xroad(pki, demo_catalog, person, created=_ago(400), ttl=360)))
    assert code == "Client.Security.MessageExpired" and "more than 300 s ago" in text


def test_xroad_signed_request_without_a_timestamp_is_refused(node, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    person = demo_world["fpr_person"][5]["person_code"]
    code, text = fault_of(_post(node.xroad, _signed_xroad(pki, demo_catalog, person, with_timestamp=False)))
    assert code == "Server.ServerProxy.AccessDenied" and "TimestampMissing" in text


def test_xroad_replay_is_refused_by_every_worker_and_another_node(node, pki, demo_catalog, demo_world,  # type: ignore[no-untyped-def]
                                                                  tmp_path):
    person = demo_world["fpr_person"][6]["person_code"]
    message = _signed_xroad(pki, demo_catalog, person)
    assert record_of(_post(node.xroad, message))["person_code"] == person
    for _ in range(4):  # two gunicorn workers: the ids seen are in the shared database
        code, text = fault_of(_post(node.xroad, message))
        assert code == "Client.Security.Replay" and VID in text
    # a second node on the same database (its own process, its own message log)
    env = _security_env(pki, tmp_path)
    env.update({"VISS_BRIDGE_NODE_ID": "node-2",
                "VISS_BRIDGE_LOG_DATABASE_URL": f"sqlite:///{tmp_path / 'node-2-msglog.sqlite'}"})
    other = start_bridge(tmp_path / "data", database_url=node.database_url, workers=1, extra_env=env)
    try:
        code, _ = fault_of(_post(other.xroad, message))
        assert code == "Client.Security.Replay"
        fresh = _signed_xroad(pki, demo_catalog, person)
        assert record_of(_post(other.xroad, fresh))["person_code"] == person
        code, _ = fault_of(_post(node.xroad, fresh))
        assert code == "Client.Security.Replay"
    finally:
        other.stop()


def test_fresh_unique_messages_are_still_served(node, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    person = demo_world["fpr_person"][7]["person_code"]
    for created in (None, _ago(250), _ago(-30)):  # now, near the end of the max age, a sender's clock ahead
        assert record_of(_post(node.xroad, _signed_xroad(pki, demo_catalog, person, created=created))) is not None
        response = post12(_viss(node), _submit(node, pki, person, created=created))
        assert response.status_code == 200, response.text
        assert etree.fromstring(response.content).find(f".//{q('Record')}") is not None
    # the same X-Road id from the same signer in a newly signed message is a replay too: ids are single use
    message_id = f"reuse-{uuid.uuid4()}"
    assert record_of(_post(node.xroad, _signed_xroad(pki, demo_catalog, person, message_id))) is not None
    code, _ = fault_of(_post(node.xroad, _signed_xroad(pki, demo_catalog, person, message_id)))
    assert code == "Client.Security.Replay"
