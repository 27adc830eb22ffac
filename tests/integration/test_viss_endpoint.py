"""/viss over real HTTP: SOAP 1.2 + WS-Addressing + WS-Security. A signed SubmitSync succeeds; a
tampered, unsigned, expired, replayed or wrongly-signed one gets its own SOAP 1.2 fault subcode."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Iterator

import pytest
import requests
import yaml
from lxml import etree

from tests.conftest import RunningBridge, start_bridge
from tests.viss_helpers import (NS_SOAP12, NS_WSA, PERSON_URN, end_transaction, envelope, parse_fault12, post12, q,
                                sign, start_transaction, submit_sync)

VID = "LV/GOV/90000069281/VID-EDS"  # granted fpr_person in the demo
RIGA = "LV/GOV/90000056357/RIGA-DOME"  # has a certificate from the CA but is not registered for VISS here
IZM = "LV/GOV/90000022399/IZM-VIIS"  # registered; its demo key is ECDSA


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    from viss_bridge.security.pki import init_dev_pki

    return init_dev_pki(tmp_path_factory.mktemp("viss-pki"))


@pytest.fixture(scope="module")
def viss_bridge(tmp_path_factory: pytest.TempPathFactory, pki) -> Iterator[RunningBridge]:  # type: ignore[no-untyped-def]
    folder = tmp_path_factory.mktemp("viss-bridge")
    consumers = folder / "viss-consumers.yaml"
    consumers.write_text(yaml.safe_dump({"consumers": [
        {"client": VID, "participant": "AU:90000069281", "cert": str(pki.consumers[VID].cert)},
        {"client": IZM, "participant": "AU:90000022399", "cert": str(pki.consumers[IZM].cert)},
    ]}))
    bridge = start_bridge(folder / "data", workers=2, extra_env={
        "VISS_BRIDGE_VISS_TRUST_CA": str(pki.ca_cert), "VISS_BRIDGE_VISS_CONSUMERS": str(consumers),
        "VISS_BRIDGE_VISS_SIGNING_CERT": str(pki.node.cert), "VISS_BRIDGE_VISS_SIGNING_KEY": str(pki.node.key)})
    yield bridge
    bridge.stop()


def _key(pki, client: str):  # type: ignore[no-untyped-def]
    from viss_bridge.security.keys import SigningKey

    return SigningKey.from_identity(pki.consumers[client])


def _url(bridge: RunningBridge) -> str:
    return f"{bridge.url}/viss"


def _transaction(bridge: RunningBridge, key) -> str:  # type: ignore[no-untyped-def]
    response = post12(_url(bridge), sign(envelope("StartTransaction", start_transaction(PERSON_URN), _url(bridge)), key))
    assert response.status_code == 200, response.text
    root = etree.fromstring(response.content)
    return root.findtext(f".//{q('TransactionID')}")


def test_signed_submit_sync_in_a_transaction(viss_bridge, pki, demo_world):  # type: ignore[no-untyped-def]
    key = _key(pki, VID)
    transaction = _transaction(viss_bridge, key)
    assert transaction.startswith("URN:IVIS:TX:")
    person = next(p for p in demo_world["fpr_person"] if len(p["addresses"]) > 1)
    message = envelope("SubmitSync", submit_sync(transaction, PERSON_URN, {"person_code": person["person_code"]},
                                                 message_id="ivis-1"), _url(viss_bridge), message_id="urn:uuid:m-1-" + uuid.uuid4().hex)
    wsa_id = message.findtext(f".//{{{NS_WSA}}}MessageID")
    response = post12(_url(viss_bridge), sign(message, key))
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/soap+xml")
    root = etree.fromstring(response.content)
    header = root.find(f"{{{NS_SOAP12}}}Header")
    assert header.findtext(f"{{{NS_WSA}}}RelatesTo") == wsa_id
    assert header.findtext(f"{{{NS_WSA}}}Action").endswith("/IRequestService/SubmitSyncResponse")
    ivis = root.find(f".//{q('IVISResponse')}/{q('Header')}")
    assert ivis.findtext(q("CorrelationID")) == "ivis-1"
    assert ivis.findtext(q("Destination")) == "AU:90000069281"  # the Sender, as proven by the signature
    assert ivis.findtext(q("TransactionID")) == transaction
    assert ivis.findtext(f"{q('Result')}/{q('Code')}") == "OK"
    record = root.find(f".//{q('IVISResponse')}/{q('Body')}/{q('Record')}")
    fields = {f.get("name"): f.text for f in record.findall(q("Field"))}
    assert fields["person_code"] == person["person_code"]
    assert fields["last_name"] == person["last_name"]
    assert fields["birth_date"] == person["birth_date"].isoformat()
    addresses = record.findall(f"{q('List')}[@name='addresses']/{q('Record')}")
    assert [a.find(q("Field")).text for a in addresses] == [a["address_code"] for a in person["addresses"]]
    # the reply is signed by the node and verifies with the project's verifier
    from viss_bridge.security.pki import TrustStore
    from viss_bridge.security.wssecurity import verify_envelope

    verify_envelope(root, TrustStore.from_files(pki.ca_cert), soap_ns=NS_SOAP12)

    # an ECDSA-signing consumer works the same; not found is a Result, not a fault
    izm = _key(pki, IZM)
    other = _transaction(viss_bridge, izm)
    response = post12(_url(viss_bridge), sign(envelope("SubmitSync", submit_sync(other, PERSON_URN, {"person_code": "010101-00000"}),
                                                       _url(viss_bridge)), izm))
    assert response.status_code == 200, response.text
    assert etree.fromstring(response.content).findtext(f".//{q('Result')}/{q('Code')}") == "NOT_FOUND"

    # EndTransaction closes it; a later SubmitSync in it is refused
    response = post12(_url(viss_bridge), sign(envelope("EndTransaction", end_transaction(transaction), _url(viss_bridge)), key))
    assert response.status_code == 200, response.text
    closed = post12(_url(viss_bridge), sign(envelope("SubmitSync", submit_sync(transaction, PERSON_URN, {"person_code": person["person_code"]}),
                                                     _url(viss_bridge)), key))
    assert parse_fault12(closed).code == "Client.UnknownTransaction"


def _submit(bridge, pki, client=VID, keys=None, sender=None):  # type: ignore[no-untyped-def]
    key = _key(pki, client)
    transaction = _transaction(bridge, key)
    return envelope("SubmitSync", submit_sync(transaction, PERSON_URN, keys or {"person_code": "220903-22422"},
                                              sender=sender), _url(bridge)), key


def test_tampered_message(viss_bridge, pki):  # type: ignore[no-untyped-def]
    message, key = _submit(viss_bridge, pki)
    signed = sign(message, key).replace(b"220903-22422", b"010190-10009")
    fault = parse_fault12(post12(_url(viss_bridge), signed))
    assert (fault.value, fault.subcode, fault.code) == ("env:Sender", "vb:Client_Security_SignatureInvalid",
                                                        "Client.Security.SignatureInvalid")


def test_unsigned_message(viss_bridge, pki):  # type: ignore[no-untyped-def]
    message, _ = _submit(viss_bridge, pki)
    fault = parse_fault12(post12(_url(viss_bridge), etree.tostring(message)))
    assert fault.code == "Client.Security.SignatureMissing"
    assert fault.relates_to == message.findtext(f".//{{{NS_WSA}}}MessageID")


def test_expired_message(viss_bridge, pki):  # type: ignore[no-untyped-def]
    message, key = _submit(viss_bridge, pki)
    stale = sign(message, key, now=dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=2))
    assert parse_fault12(post12(_url(viss_bridge), stale)).code == "Client.Security.MessageExpired"


def test_replayed_message_is_refused_by_every_worker(viss_bridge, pki):  # type: ignore[no-untyped-def]
    message, key = _submit(viss_bridge, pki)
    signed = sign(message, key)
    assert post12(_url(viss_bridge), signed).status_code == 200
    for _ in range(4):  # two gunicorn workers: the seen MessageIDs are in the database
        assert parse_fault12(post12(_url(viss_bridge), signed)).code == "Client.Security.Replay"


def test_wrongly_signed_messages(viss_bridge, pki, tmp_path):  # type: ignore[no-untyped-def]
    from viss_bridge.security.keys import SigningKey
    from viss_bridge.security.pki import init_dev_pki

    message, _ = _submit(viss_bridge, pki)
    rogue = init_dev_pki(tmp_path / "rogue")  # same names, another CA
    forged = sign(message, SigningKey.from_identity(rogue.consumers[VID]))
    assert parse_fault12(post12(_url(viss_bridge), forged)).code == "Client.Security.UntrustedCertificate"

    message, _ = _submit(viss_bridge, pki)
    unregistered = sign(message, _key(pki, RIGA))  # a genuine certificate, but not a registered VISS consumer
    assert parse_fault12(post12(_url(viss_bridge), unregistered)).code == "Client.Security.UnregisteredCertificate"


def test_sender_comes_from_the_signature_not_the_body(viss_bridge, pki):  # type: ignore[no-untyped-def]
    message, key = _submit(viss_bridge, pki, sender="AU:90000022399")  # VID-EDS claims to be IZM-VIIS
    fault = parse_fault12(post12(_url(viss_bridge), sign(message, key)))
    assert fault.code == "Client.InconsistentHeaders"


def test_addressing_destination_and_version_faults(viss_bridge, pki):  # type: ignore[no-untyped-def]
    key = _key(pki, VID)
    transaction = _transaction(viss_bridge, key)
    unknown = envelope("SubmitSync", submit_sync(transaction, "URN:IVIS:999:NOPE-V1-0", {"person_code": "x"}), _url(viss_bridge))
    fault = parse_fault12(post12(_url(viss_bridge), sign(unknown, key)))
    assert (fault.value, fault.code) == ("env:Receiver", "Server.ServerProxy.UnknownService")
    no_action = envelope("SubmitSync", submit_sync(transaction, PERSON_URN, {"person_code": "x"}), _url(viss_bridge))
    action = no_action.find(f".//{{{NS_WSA}}}Action")
    action.getparent().remove(action)
    assert parse_fault12(post12(_url(viss_bridge), sign(no_action, key))).code == "Client.MissingHeaderField"
    elsewhere = envelope("SubmitSync", submit_sync(transaction, PERSON_URN, {"person_code": "x"}),
                         "http://other-bridge.example/viss")
    fault = parse_fault12(post12(_url(viss_bridge), sign(elsewhere, key)))
    assert (fault.status, fault.code) == (400, "Client.InvalidAddressing")
    soap11 = (b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><x/></e:Body></e:Envelope>')
    response = post12(_url(viss_bridge), soap11)
    assert response.status_code == 500  # SOAP 1.2: VersionMismatch is 500, Sender faults 400
    assert etree.fromstring(response.content).findtext(f".//{{{NS_SOAP12}}}Code/{{{NS_SOAP12}}}Value") == "env:VersionMismatch"


def test_wsdl_loads_in_zeep(viss_bridge):  # type: ignore[no-untyped-def]
    import zeep

    text = requests.get(f"{_url(viss_bridge)}?wsdl", timeout=10)
    assert text.status_code == 200
    client = zeep.Client(f"{_url(viss_bridge)}?wsdl")
    assert set(client.service._binding._operations) == {"StartTransaction", "SubmitSync", "EndTransaction"}


@pytest.mark.postgres
def test_replay_refused_on_postgresql_with_several_workers(pki, pg_database, tmp_path):  # type: ignore[no-untyped-def]
    consumers = tmp_path / "viss-consumers.yaml"
    consumers.write_text(yaml.safe_dump({"consumers": [
        {"client": VID, "participant": "AU:90000069281", "cert": str(pki.consumers[VID].cert)}]}))
    bridge = start_bridge(tmp_path / "data", database_url=pg_database, workers=3, extra_env={
        "VISS_BRIDGE_VISS_TRUST_CA": str(pki.ca_cert), "VISS_BRIDGE_VISS_CONSUMERS": str(consumers)})
    try:
        message, key = _submit(bridge, pki)
        signed = sign(message, key)
        assert post12(_url(bridge), signed).status_code == 200
        codes = {parse_fault12(post12(_url(bridge), signed)).code for _ in range(6)}
        assert codes == {"Client.Security.Replay"}
    finally:
        bridge.stop()


def test_access_rules_apply_to_viss(viss_bridge, pki, demo_world):  # type: ignore[no-untyped-def]
    """A certificate registered to a connection in the access registry (not in the VISS file) is accepted,
    and that connection's permissions, and persons' restrictions, decide the answer."""
    from tests.conftest import cli

    bank = "LV/COM/40003000001/BANK-KYC"  # granted ur_company only in the demo
    cli("clients", "cert", bank, str(pki.consumers[bank].cert), env=viss_bridge.env())
    message, key = _submit(viss_bridge, pki, client=bank)
    fault = parse_fault12(post12(_url(viss_bridge), sign(message, key)))
    assert fault.code == "Server.ServerProxy.AccessDenied" and bank in fault.reason

    person = demo_world["fpr_person"][10]["person_code"]
    cli("access", "restrict", person, "fpr_person", env=viss_bridge.env())
    key = _key(pki, VID)
    transaction = _transaction(viss_bridge, key)
    restricted = envelope("SubmitSync", submit_sync(transaction, PERSON_URN, {"person_code": person}), _url(viss_bridge))
    fault = parse_fault12(post12(_url(viss_bridge), sign(restricted, key)))
    assert fault.code.startswith("Server.ServerProxy.AccessDenied") and "restricted" in fault.reason


VEHICLE_URN = "URN:IVIS:100002:CSDD.TL-TL01-V1-0"  # csdd_vehicle's viss contract in the demo


def _viss_schema() -> etree.XMLSchema:
    """The schema inside the served VISS WSDL, to validate answers the way a generated client would read them."""
    from viss_bridge.facade.viss import WSDL_FILE

    wsdl = etree.parse(str(WSDL_FILE))
    schema = wsdl.find(".//{http://www.w3.org/2001/XMLSchema}schema")
    # serialised alone it keeps the namespace declarations (tns:...) it inherits from the WSDL
    return etree.XMLSchema(etree.fromstring(etree.tostring(schema)))


def _value(element: etree._Element) -> str | None:
    return None if element.get("{http://www.w3.org/2001/XMLSchema-instance}nil") == "true" else element.text


def _read(record: etree._Element) -> dict:  # type: ignore[type-arg]
    """A VISS RecordType back as plain data: Fields, Objects, Lists of Records or of Values."""
    data: dict = {f.get("name"): _value(f) for f in record.findall(q("Field"))}  # type: ignore[type-arg]
    for obj in record.findall(q("Object")):
        data[obj.get("name")] = _read(obj)
    for holder in record.findall(q("List")):
        if holder.get("type"):
            data[holder.get("name")] = [v.text for v in holder.findall(q("Value"))]
        else:
            data[holder.get("name")] = [_read(r) for r in holder.findall(q("Record"))]
    return data


def _as_text(value):  # type: ignore[no-untyped-def]
    """Generator values in their VISS text form (None stays None: a nil value)."""
    if isinstance(value, dict):
        return {k: _as_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_text(v) for v in value]
    return None if value is None else (value.isoformat() if hasattr(value, "isoformat") else str(value))


def test_nested_record_renders_objects_lists_values_and_nil_valid_against_the_wsdl(viss_bridge, pki, demo_world):  # type: ignore[no-untyped-def]
    key = _key(pki, VID)
    vehicles = demo_world["csdd_vehicle"]
    schema = _viss_schema()
    picks = [next(v for v in vehicles if v["technical"]["power_kw"] is None),
             next(v for v in vehicles if v["previous_plates"] and any(o["contacts"] for o in v["owners"]))]
    for vehicle in picks:
        transaction = _transaction(viss_bridge, key)
        message = envelope("SubmitSync", submit_sync(transaction, VEHICLE_URN, {"plate": vehicle["plate"]}),
                           _url(viss_bridge))
        response = post12(_url(viss_bridge), sign(message, key))
        assert response.status_code == 200, response.text
        answer = etree.fromstring(response.content).find(f".//{q('SubmitSyncResponse')}")
        schema.assertValid(answer)
        record = answer.find(f"{q('IVISResponse')}/{q('Body')}/{q('Record')}")
        expected = _as_text(vehicle)
        for owner in expected["owners"]:
            owner.setdefault("contacts", [])
        assert _read(record) == expected
