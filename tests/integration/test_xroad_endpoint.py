"""/xroad over real HTTP: typed lookups through zeep, header echo, metaservices, listClients."""

from __future__ import annotations

import email
import email.policy
import uuid
from pathlib import Path

import pytest
import requests
import zeep
from lxml import etree

from tests.conftest import BANK_CONSUMER, DEMO_CONSUMER, EDUCATION_CONSUMER
from tests.soap_helpers import NS_ID, NS_SOAP11, NS_XROAD, XROAD_TNS, normalise, post, xroad_headers, xroad_lookup

CONSUMER_FOR = {"fpr_person": DEMO_CONSUMER, "ur_company": DEMO_CONSUMER, "vzd_address": DEMO_CONSUMER,
                "viis_education": EDUCATION_CONSUMER, "vsaa_social_insurance": DEMO_CONSUMER,
                "csdd_vehicle": DEMO_CONSUMER}


@pytest.fixture(scope="module")
def xroad_client(bridge):  # type: ignore[no-untyped-def]
    return zeep.Client(f"{bridge.xroad}?wsdl")


@pytest.mark.parametrize("name", sorted(CONSUMER_FOR))
def test_typed_lookup_of_every_demo_dataset_through_zeep(name, bridge, xroad_client, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    dataset = demo_catalog.get(name)
    # Pick a record with a populated list field, so nesting is exercised.
    records = demo_world[name]
    expected = next((r for r in records if any(isinstance(v, list) and v for v in r.values())), records[0])
    key = {k: expected[k] for k in dataset.key}
    answer = getattr(xroad_client.service, name)(**key, _soapheaders=xroad_headers(CONSUMER_FOR[name], dataset))
    record = answer.body.record
    assert record is not None
    assert normalise(record) == normalise(expected)


def test_wsdl_types_every_field_and_binds_xroad_headers(bridge):  # type: ignore[no-untyped-def]
    wsdl = etree.fromstring(requests.get(f"{bridge.xroad}?wsdl", timeout=10).content)
    xs = "http://www.w3.org/2001/XMLSchema"
    record = wsdl.find(f".//{{{xs}}}complexType[@name='fpr_person_record']")
    types = {e.get("name"): e.get("type") for e in record.iter(f"{{{xs}}}element")}
    assert types["birth_date"] == "xs:date"
    # person_code has a max_length in its manifest: a string restriction carrying it
    if types["person_code"] != "xs:string":
        simple = wsdl.find(f".//{{{xs}}}simpleType[@name='{types['person_code'].split(':')[1]}']")
        assert simple.find(f"{{{xs}}}restriction").get("base") == "xs:string"
        assert simple.find(f"{{{xs}}}restriction/{{{xs}}}maxLength") is not None
    assert "xs:anyType" not in etree.tostring(wsdl).decode()
    headers = wsdl.findall(".//{http://schemas.xmlsoap.org/wsdl/soap/}header")
    assert {h.get("part") for h in headers} >= {"client", "service", "id", "userId", "protocolVersion"}


def test_not_found_is_an_empty_answer_not_a_fault(bridge, xroad_client, demo_catalog):  # type: ignore[no-untyped-def]
    dataset = demo_catalog.get("fpr_person")
    answer = xroad_client.service.fpr_person(person_code="010101-00000",
                                             _soapheaders=xroad_headers(DEMO_CONSUMER, dataset))
    assert answer.body.record is None


def test_response_echoes_every_request_header_in_order(bridge, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    dataset = demo_catalog.get("vzd_address")
    code = demo_world["vzd_address"][3]["address_code"]
    request = etree.fromstring(xroad_lookup(dataset, DEMO_CONSUMER, {"address_code": code}, "echo-42"))
    header = request.find(f"{{{NS_SOAP11}}}Header")
    etree.SubElement(header, f"{{{NS_XROAD}}}issue").text = "ticket-7"
    represented = etree.SubElement(header, "{http://x-road.eu/xsd/representation.xsd}representedParty")
    etree.SubElement(represented, "{http://x-road.eu/xsd/representation.xsd}partyCode").text = "90000000001"
    sent = [(etree.QName(e).localname, etree.tostring(e, method="c14n", exclusive=True)) for e in header]
    response = post(bridge.xroad, etree.tostring(request))
    assert response.status_code == 200, response.text
    answer = etree.fromstring(response.content)
    echoed = list(answer.find(f"{{{NS_SOAP11}}}Header"))
    names = [etree.QName(e).localname for e in echoed]
    assert names[:len(sent)] == [name for name, _ in sent]
    for (name, original), element in zip(sent, echoed):
        assert etree.tostring(element, method="c14n", exclusive=True) == original, name
    # The session bridge signs its responses: its own wsse:Security header follows the echo.
    assert [n for n in names[len(sent):] if n != "Security"] == ["requestHash"]
    body = answer.find(f"{{{NS_SOAP11}}}Body/{{{XROAD_TNS}}}vzd_addressResponse/{{{XROAD_TNS}}}record")
    assert body.findtext(f"{{{XROAD_TNS}}}address_code") == code


def _meta_request(client: str, provider: str, code: str, body: etree._Element | None = None) -> bytes:
    from viss_bridge.facade.xroad_headers import XRoadId, request_envelope

    parts = provider.split("/")
    service = XRoadId("SERVICE", parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else None, code)
    return request_envelope(client, service, body if body is not None else etree.Element(f"{{{NS_XROAD}}}{code}"),
                            str(uuid.uuid4()))


def _services(response: requests.Response, code: str) -> list[str]:
    root = etree.fromstring(response.content)
    result = root.find(f"{{{NS_SOAP11}}}Body/{{{NS_XROAD}}}{code}Response")
    return sorted(s.findtext(f"{{{NS_ID}}}serviceCode") for s in result.findall(f"{{{NS_XROAD}}}service"))


def test_list_and_allowed_methods(bridge, demo_catalog):  # type: ignore[no-untyped-def]
    fpr = demo_catalog.get("fpr_person").owner
    ur = demo_catalog.get("ur_company").owner
    # fpr_person declares indexes: its search service fpr_personSearch is listed beside it (docs/endpoints.md)
    assert _services(post(bridge.xroad, _meta_request(BANK_CONSUMER, fpr, "listMethods")), "listMethods") == [
        "fpr_person", "fpr_personSearch"]
    assert _services(post(bridge.xroad, _meta_request(BANK_CONSUMER, fpr, "allowedMethods")), "allowedMethods") == []
    assert _services(post(bridge.xroad, _meta_request(BANK_CONSUMER, ur, "allowedMethods")), "allowedMethods") == ["ur_company"]
    assert _services(post(bridge.xroad, _meta_request(DEMO_CONSUMER, fpr, "allowedMethods")), "allowedMethods") == [
        "fpr_person", "fpr_personSearch"]


def test_get_wsdl_returns_the_service_wsdl_as_an_attachment(bridge, demo_catalog, tmp_path: Path):  # type: ignore[no-untyped-def]
    owner = demo_catalog.get("ur_company").owner
    body = etree.Element(f"{{{NS_XROAD}}}getWsdl")
    etree.SubElement(body, f"{{{NS_XROAD}}}serviceCode").text = "ur_company"
    etree.SubElement(body, f"{{{NS_XROAD}}}serviceVersion").text = "v1"
    response = post(bridge.xroad, _meta_request(BANK_CONSUMER, owner, "getWsdl", body))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/related")
    message = email.message_from_bytes(b"Content-Type: " + response.headers["Content-Type"].encode() + b"\r\n\r\n"
                                       + response.content, policy=email.policy.HTTP)
    soap_part, wsdl_part = list(message.iter_parts())
    assert b"getWsdlResponse" in soap_part.get_payload(decode=True)
    wsdl = wsdl_part.get_payload(decode=True)
    path = tmp_path / "ur_company.wsdl"
    path.write_bytes(wsdl)
    client = zeep.Client(str(path))
    operations = list(client.wsdl.services.values())[0].ports.values()
    names = {op for port in operations for op in port.binding._operations}
    assert names == {"ur_company"}
    assert b"http://example.org/xroad-endpoint" in wsdl


def test_list_clients_xml_and_json(bridge, demo_catalog):  # type: ignore[no-untyped-def]
    xml = etree.fromstring(requests.get(f"{bridge.url}/listClients", timeout=10).content)
    codes = {m.findtext(f"{{{NS_XROAD}}}id/{{{NS_ID}}}subsystemCode") for m in xml.findall(f"{{{NS_XROAD}}}member")}
    assert {"FPR", "VID-EDS", "BANK-KYC"} <= codes
    data = requests.get(f"{bridge.url}/listClients", headers={"Accept": "application/json"}, timeout=10).json()
    ids = {(m["id"]["member_code"], m["id"].get("subsystem_code")) for m in data["member"]}
    owner = demo_catalog.get("fpr_person").owner_parts
    assert (owner[2], owner[3]) in ids


def test_health_and_metrics(bridge, xroad_client, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    health = requests.get(f"{bridge.url}/health", timeout=10).json()
    assert health["status"] == "ok" and health["store"]["status"] == "ok"
    assert health["catalog"]["datasets"] == len(demo_catalog.datasets) == 6
    dataset = demo_catalog.get("ur_company")
    xroad_client.service.ur_company(reg_number=demo_world["ur_company"][0]["reg_number"],
                                    _soapheaders=xroad_headers(DEMO_CONSUMER, dataset))
    metrics = requests.get(f"{bridge.url}/metrics", timeout=10).text
    assert 'viss_bridge_requests_total{endpoint="xroad",outcome="ok",service="ur_company"}' in metrics
    assert 'viss_bridge_request_duration_seconds_bucket{endpoint="xroad",le="0.005",service="ur_company"}' in metrics
