"""Every bad request gets the X-Road fault with its precise code, a logged UUID, and no worker dies."""

from __future__ import annotations

import json
import re
import time

import pytest
import requests
from lxml import etree

from tests.conftest import BANK_CONSUMER, DEMO_CONSUMER
from tests.soap_helpers import NS_ID, NS_SOAP11, NS_XROAD, XROAD_TNS, parse_fault, post, xroad_lookup

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


@pytest.fixture(scope="module")
def person(demo_world):  # type: ignore[no-untyped-def]
    return demo_world["fpr_person"][0]["person_code"]


def good_request(demo_catalog, person: str) -> etree._Element:  # type: ignore[no-untyped-def]
    return etree.fromstring(xroad_lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": person}))


def header_of(root: etree._Element) -> etree._Element:
    return root.find(f"{{{NS_SOAP11}}}Header")


def drop(root: etree._Element, path: str) -> bytes:
    element = root.find(path, {"xrd": NS_XROAD, "id": NS_ID, "s": NS_SOAP11})
    element.getparent().remove(element)
    return etree.tostring(root)


def assert_fault(bridge, body: bytes, code: str, status: int = 500, text: str | None = None):  # type: ignore[no-untyped-def]
    response = post(bridge.xroad, body)
    fault = parse_fault(response)
    assert (fault.code, fault.status) == (code, status), fault
    assert UUID.match(fault.detail), fault.detail
    if text:
        assert text in fault.string
    return fault


def test_missing_header_fields(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    for path, field in (("s:Header/xrd:client", "client"), ("s:Header/xrd:service", "service"),
                        ("s:Header/xrd:id", "id"), ("s:Header/xrd:protocolVersion", "protocolVersion"),
                        ("s:Header/xrd:client/id:memberCode", "client/memberCode"),
                        ("s:Header/xrd:service/id:serviceCode", "service/serviceCode")):
        assert_fault(bridge, drop(good_request(demo_catalog, person), path), "Client.MissingHeaderField", text=field)
    root = good_request(demo_catalog, person)
    root.remove(header_of(root))
    assert_fault(bridge, etree.tostring(root), "Client.MissingHeaderField")


def test_wrong_protocol_version(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    root = good_request(demo_catalog, person)
    header_of(root).find(f"{{{NS_XROAD}}}protocolVersion").text = "3.1"
    assert_fault(bridge, etree.tostring(root), "Client.InvalidProtocolVersion", text="3.1")


def test_inconsistent_headers(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    root = good_request(demo_catalog, person)
    root.find(f"{{{NS_SOAP11}}}Body")[0].tag = f"{{{XROAD_TNS}}}ur_company"
    assert_fault(bridge, etree.tostring(root), "Client.InconsistentHeaders", text="does not match serviceCode")
    root = good_request(demo_catalog, person)
    header_of(root).find(f"{{{NS_XROAD}}}service").set(f"{{{NS_ID}}}objectType", "MEMBER")
    assert_fault(bridge, etree.tostring(root), "Client.InconsistentHeaders", text="objectType")
    root = good_request(demo_catalog, person)
    header_of(root).find(f"{{{NS_XROAD}}}client").set(f"{{{NS_ID}}}objectType", "MEMBER")
    assert_fault(bridge, etree.tostring(root), "Client.InconsistentHeaders", text="subsystemCode")


def test_duplicate_header_field(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    root = good_request(demo_catalog, person)
    etree.SubElement(header_of(root), f"{{{NS_XROAD}}}id").text = "second"
    assert_fault(bridge, etree.tostring(root), "Client.DuplicateHeaderField")


def test_unknown_service_version_and_member(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    root = good_request(demo_catalog, person)
    header_of(root).find(f"{{{NS_XROAD}}}service/{{{NS_ID}}}serviceVersion").text = "v9"
    assert_fault(bridge, etree.tostring(root), "Server.ServerProxy.UnknownService", text="v9")

    root = good_request(demo_catalog, person)
    header_of(root).find(f"{{{NS_XROAD}}}service/{{{NS_ID}}}serviceCode").text = "getPersonSecrets"
    root.find(f"{{{NS_SOAP11}}}Body")[0].tag = f"{{{XROAD_TNS}}}getPersonSecrets"
    assert_fault(bridge, etree.tostring(root), "Server.ServerProxy.UnknownService", text="getPersonSecrets")

    root = good_request(demo_catalog, person)
    header_of(root).find(f"{{{NS_XROAD}}}service/{{{NS_ID}}}memberCode").text = "99999999999"
    assert_fault(bridge, etree.tostring(root), "Server.ServerProxy.UnknownMember", text="99999999999")

    root = good_request(demo_catalog, person)
    header_of(root).find(f"{{{NS_XROAD}}}service/{{{NS_ID}}}xRoadInstance").text = "EE"
    assert_fault(bridge, etree.tostring(root), "Server.ServerProxy.UnknownMember", text="EE")


def test_client_without_permission_is_denied(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    body = xroad_lookup(demo_catalog.get("fpr_person"), BANK_CONSUMER, {"person_code": person})
    assert_fault(bridge, body, "Server.ServerProxy.AccessDenied", text=BANK_CONSUMER)
    unknown = "LV/COM/40003999999/NOBODY"
    body = xroad_lookup(demo_catalog.get("ur_company"), unknown, {"reg_number": "40003000000"})
    assert_fault(bridge, body, "Server.ServerProxy.AccessDenied", text=unknown)


def test_open_dataset_answers_an_unregistered_client(bridge, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    code = demo_world["vzd_address"][0]["address_code"]
    body = xroad_lookup(demo_catalog.get("vzd_address"), "LV/COM/40003999999/NOBODY", {"address_code": code})
    assert post(bridge.xroad, body).status_code == 200


def test_invalid_key_value_is_a_client_fault(bridge, demo_catalog):  # type: ignore[no-untyped-def]
    root = etree.fromstring(xroad_lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": "x"}))
    body = root.find(f"{{{NS_SOAP11}}}Body")[0]
    body.remove(body[0])
    assert_fault(bridge, etree.tostring(root), "Client.InvalidRequest")


HOSTILE = {
    "doctype": b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x "y">]><e>&x;</e>',
    "billion_laughs": b'<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;">]><l>&c;</l>',
    "xxe": b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>',
    "not_xml": b"GET /etc/passwd HTTP/1.0",
    "truncated": b"<SOAP-ENV:Envelope xmlns:SOAP-ENV='http://schemas.xmlsoap.org/soap/envelope/'><SOAP-ENV:Body>",
    "not_an_envelope": b"<hello/>",
    "empty_body": b"<e:Envelope xmlns:e='http://schemas.xmlsoap.org/soap/envelope/'><e:Body/></e:Envelope>",
    "empty": b"",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_or_broken_xml_is_invalid_soap(bridge, name):  # type: ignore[no-untyped-def]
    assert_fault(bridge, HOSTILE[name], "Client.InvalidSoap")


def test_entity_inside_a_real_request_is_refused(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    text = etree.tostring(good_request(demo_catalog, person)).decode()
    text = '<!DOCTYPE x [<!ENTITY p "' + person + '">]>' + text.replace(person, "&p;")
    assert_fault(bridge, text.encode(), "Client.InvalidSoap", text="DOCTYPE")


def test_oversized_message_is_refused_with_413(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    root = good_request(demo_catalog, person)
    etree.SubElement(header_of(root), "{urn:padding}pad").text = "x" * (4 * 1024 * 1024 + 1)
    fault = assert_fault(bridge, etree.tostring(root), "Client.InvalidSoap.MessageTooLarge", status=413)
    assert "4194304" in fault.string


def test_soap12_envelope_at_a_soap11_endpoint(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    text = etree.tostring(good_request(demo_catalog, person)).replace(
        NS_SOAP11.encode(), b"http://www.w3.org/2003/05/soap-envelope")
    response = post(bridge.xroad, text, "application/soap+xml; charset=utf-8")
    root = etree.fromstring(response.content)
    assert root.tag == f"{{{NS_SOAP11}}}Envelope"
    assert root.findtext(f".//{{{NS_SOAP11}}}Fault/faultcode").endswith("VersionMismatch")
    assert "SOAP 1.2" in root.findtext(f".//{{{NS_SOAP11}}}Fault/faultstring")


def test_fault_ids_are_in_the_structured_log_and_workers_survive(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    fault = assert_fault(bridge, HOSTILE["billion_laughs"], "Client.InvalidSoap")
    deadline = time.monotonic() + 5
    entry = None
    while time.monotonic() < deadline and entry is None:
        for line in bridge.log_text().splitlines():
            if fault.detail in line and line.startswith("{"):
                entry = json.loads(line)
        time.sleep(0.1)
    assert entry is not None, "fault id not logged"
    assert entry["fault_code"] == "Client.InvalidSoap" and entry["endpoint"] == "xroad"
    # After every hostile input above, the same workers still answer correctly.
    assert bridge.process.poll() is None
    assert "Worker exiting" not in bridge.log_text() and "WORKER TIMEOUT" not in bridge.log_text()
    for _ in range(6):
        assert post(bridge.xroad, etree.tostring(good_request(demo_catalog, person))).status_code == 200
    assert requests.get(f"{bridge.url}/health", timeout=5).status_code == 200


def test_get_without_wsdl_and_unknown_paths(bridge):  # type: ignore[no-untyped-def]
    assert requests.get(bridge.xroad, timeout=5).status_code == 405
    assert requests.get(f"{bridge.url}/nowhere", timeout=5).status_code == 404
    assert requests.get(f"{bridge.xroad}?wsdl&service=nope", timeout=5).status_code == 404


def _client_header(member_code: str, subsystem: str | None) -> etree._Element:
    client = etree.Element(f"{{{NS_XROAD}}}client", nsmap={"xrd": NS_XROAD, "id": NS_ID})
    client.set(f"{{{NS_ID}}}objectType", "SUBSYSTEM" if subsystem else "MEMBER")
    for name, value in (("xRoadInstance", "LV"), ("memberClass", "GOV"), ("memberCode", member_code),
                        ("subsystemCode", subsystem)):
        if value is not None:
            etree.SubElement(client, f"{{{NS_ID}}}{name}").text = value
    return client


def test_identifier_parts_cannot_join_into_another_identity(bridge, demo_catalog, person):  # type: ignore[no-untyped-def]
    """Issue 9.3: a part holding "/" (or any character X-Road does not allow) is refused, not joined into
    another client's identity (here the demo consumer LV/GOV/90000069281/VID-EDS, which may read fpr_person)."""
    for member_code, subsystem in (("90000069281/VID-EDS", None), ("90000069281", "VID-EDS/x"),
                                   ("90000069281", "VID EDS"), ("cli:root", None), ("9000%2F1", None)):
        root = good_request(demo_catalog, person)
        header = header_of(root)
        old = header.find(f"{{{NS_XROAD}}}client")
        header.replace(old, _client_header(member_code, subsystem))
        fault = assert_fault(bridge, etree.tostring(root), "Client.InvalidClientIdentifier")
        assert "client" in fault.string and "not a valid X-Road identifier part" in fault.string, fault
    for path, value in (("id:serviceCode", "fpr_person/../x"), ("id:subsystemCode", "FPR/fpr_person"),
                        ("id:serviceVersion", "v1;drop")):
        root = good_request(demo_catalog, person)
        header_of(root).find(f"{{{NS_XROAD}}}service/{path.replace('id:', '{' + NS_ID + '}')}").text = value
        assert_fault(bridge, etree.tostring(root), "Client.InvalidServiceIdentifier", text="service")


def test_invalid_client_ids_cannot_be_registered(bridge):  # type: ignore[no-untyped-def]
    from tests.conftest import cli

    for bad in ("LV/GOV/90000069281:1/X", "cli:root", "LV/GOV/9000 1", "LV/GOV//X"):
        for command in (("clients", "add", bad), ("clients", "grant", bad, "fpr_person")):
            refused = cli(*command, env=bridge.env(), check=False)
            assert refused.returncode != 0, (command, refused.stdout)
    listed = cli("clients", "list", env=bridge.env()).stdout
    assert "cli:root" not in listed and "90000069281:1" not in listed
