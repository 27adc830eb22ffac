"""Permissions like the platform's: readable fields in answers and WSDLs, exact quotas under concurrency."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import zeep
from lxml import etree

from tests.access_helpers import fault_of, lookup, new_consumer, record_of, registry_for
from tests.conftest import DEMO_CONSUMER, start_bridge
from tests.soap_helpers import XROAD_TNS, xroad_lookup

XS = "http://www.w3.org/2001/XMLSchema"
READABLE = ["first_name", "last_name"]


def record_elements(wsdl: etree._Element, type_name: str) -> list[str]:
    complex_type = wsdl.find(f".//{{{XS}}}complexType[@name='{type_name}']")
    assert complex_type is not None, type_name
    return [e.get("name") for e in complex_type.find(f"{{{XS}}}sequence")]


@pytest.fixture(scope="module")
def narrow(tls_bridge, pki):  # type: ignore[no-untyped-def]
    consumer = new_consumer(tls_bridge, pki, "narrow")
    permission = registry_for(tls_bridge).grant(consumer.client_id, "fpr_person", fields=READABLE,
                                                purpose="tax residency check", legal_basis="Law on Taxes, s. 18")
    return consumer, permission


def test_answer_holds_only_the_readable_fields(tls_bridge, narrow, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    consumer, _ = narrow
    person = demo_world["fpr_person"][10]
    response = consumer.post(tls_bridge.xroad, lookup(demo_catalog.get("fpr_person"), consumer.client_id,
                                                      {"person_code": person["person_code"]}))
    assert record_of(response) == {"person_code": person["person_code"], "first_name": person["first_name"],
                                   "last_name": person["last_name"]}
    assert b"birth_date" not in response.content and b"addresses" not in response.content


def test_wsdl_of_the_client_shows_only_its_services_and_fields(tls_bridge, narrow, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    consumer, _ = narrow
    mine = etree.fromstring(consumer.session().get(f"{tls_bridge.xroad}?wsdl", timeout=30).content)
    assert record_elements(mine, "fpr_person_record") == ["person_code", "first_name", "last_name"]
    operations = {op.get("name") for op in mine.iter("{http://schemas.xmlsoap.org/wsdl/}operation")}
    assert "fpr_person" in operations and "vzd_address" in operations  # vzd_address is open data
    assert "viis_education" not in operations and "vsaa_social_insurance" not in operations
    # anonymous readers of the WSDL get the whole contract
    everyone = etree.fromstring(requests.get(f"{tls_bridge.xroad}?wsdl", verify=str(pki.ca.cert_path), timeout=30).content)
    assert "birth_date" in record_elements(everyone, "fpr_person_record")
    # zeep built from the client's own WSDL reads the narrowed record
    client = zeep.Client(f"{tls_bridge.xroad}?wsdl", transport=zeep.Transport(session=consumer.session()))
    from tests.soap_helpers import xroad_headers

    person = demo_world["fpr_person"][11]
    answer = client.service.fpr_person(person_code=person["person_code"],
                                       _soapheaders=xroad_headers(consumer.client_id, demo_catalog.get("fpr_person")))
    assert answer.body.record.last_name == person["last_name"]
    assert not hasattr(answer.body.record, "birth_date")


def test_catalog_describe_dataset_shows_the_readable_fields(tls_bridge, narrow):  # type: ignore[no-untyped-def]
    consumer, _ = narrow
    native = zeep.Client(f"{tls_bridge.catalog}?wsdl", transport=zeep.Transport(session=consumer.session()))
    description = native.service.describeDataset(dataset="fpr_person",
                                                  _soapheaders={"caller": {"client": consumer.client_id}})
    assert [f.name for f in description.field] == ["person_code", "first_name", "last_name"]


def test_current_permissions_endpoint(tls_bridge, narrow, pki):  # type: ignore[no-untyped-def]
    consumer, permission = narrow
    data = consumer.session().get(f"{tls_bridge.url}/access/permissions", timeout=30).json()
    assert data["client"] == consumer.client_id and data["authenticated_by"] == "tls"
    (mine,) = [p for p in data["permissions"] if p["number"] == permission.number]
    assert mine["fields"] == READABLE and mine["dataset"] == "fpr_person" and mine["status"] == "active"
    assert mine["purpose"] == "tax residency check" and mine["legal_basis"] == "Law on Taxes, s. 18"
    assert mine["quota"] is None and mine["valid_to"] is None
    anonymous = requests.get(f"{tls_bridge.url}/access/permissions", verify=str(pki.ca.cert_path), timeout=30)
    assert anonymous.status_code == 401


def hammer(url: str, bodies: list[bytes], post) -> list[requests.Response]:  # type: ignore[no-untyped-def]
    """Send every body at once from 8 threads (barrier start), return the responses."""
    barrier = threading.Barrier(8)

    def send(index: int) -> list[requests.Response]:
        barrier.wait()
        return [post(url, body) for body in bodies[index::8]]

    with ThreadPoolExecutor(8) as pool:
        return [r for rs in pool.map(send, range(8)) for r in rs]


def check_quota(responses: list[requests.Response], quota: int, permission: str) -> None:
    ok = [r for r in responses if r.status_code == 200]
    refused = [fault_of(r) for r in responses if r.status_code != 200]
    assert len(ok) == quota, [r.text[:300] for r in responses if r.status_code != 200][:3]
    assert len(refused) == len(responses) - quota
    assert all(code == "Server.ServerProxy.AccessDenied" and permission in text and "quota" in text
               for code, text in refused), refused[:3]


def test_quota_is_exact_under_concurrent_callers_sqlite(tls_bridge, pki, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    consumer = new_consumer(tls_bridge, pki, "quota")
    registry = registry_for(tls_bridge)
    permission = registry.grant(consumer.client_id, "fpr_person", purpose="batch check", legal_basis="law",
                                quota=13)
    dataset = demo_catalog.get("fpr_person")
    people = [p["person_code"] for p in demo_world["fpr_person"][20:52]]
    bodies = [lookup(dataset, consumer.client_id, {"person_code": code}) for code in people]
    check_quota(hammer(tls_bridge.xroad, bodies, consumer.post), 13, permission.number)
    stored = registry.permission(permission.number)
    assert stored.used == 13 and stored.state() == "exhausted"
    # every served answer left exactly one tracker entry, and no refused one did
    from viss_bridge.access.tracker import DataTracker

    tracker = DataTracker(registry.engine)
    entries = [e for code in people for e in tracker.usage(code)[0] if e.client_id == consumer.client_id]
    assert len(entries) == 13 and {e.permission_number for e in entries} == {permission.number}


@pytest.mark.postgres
def test_quota_is_exact_under_concurrent_callers_postgresql(pg_database, tmp_path, demo_world):  # type: ignore[no-untyped-def]
    bridge = start_bridge(tmp_path / "pg-quota", database_url=pg_database, workers=3)
    try:
        from viss_bridge.catalog.catalog import load_catalog

        dataset = load_catalog(bridge.catalog_dir).get("fpr_person")
        registry = registry_for(bridge)
        client = "LV/GOV/90000099999/QUOTA-PG"
        registry.add_client(client, "quota test")
        permission = registry.grant(client, "fpr_person", purpose="batch", legal_basis="law", quota=17)
        bodies = [xroad_lookup(dataset, client, {"person_code": p["person_code"]})
                  for p in demo_world["fpr_person"][:40]]

        def post(url: str, body: bytes) -> requests.Response:
            return requests.post(url, data=body, headers={"Content-Type": "text/xml"}, timeout=30)

        check_quota(hammer(bridge.xroad, bodies, post), 17, permission.number)
        assert registry.permission(permission.number).used == 17
    finally:
        bridge.stop()


def test_simple_grant_still_reads_everything(bridge, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    """The demo's plain grants (migrated model: all fields, no expiry, no quota) answer as before."""
    person = demo_world["fpr_person"][12]
    body = xroad_lookup(demo_catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": person["person_code"]})
    response = requests.post(bridge.xroad, data=body, headers={"Content-Type": "text/xml"}, timeout=30)
    record = etree.fromstring(response.content).find(f".//{{{XROAD_TNS}}}record")
    assert record.findtext(f"{{{XROAD_TNS}}}birth_date") == str(person["birth_date"])


def test_get_wsdl_metaservice_shows_the_readable_fields(tls_bridge, narrow, demo_catalog):  # type: ignore[no-untyped-def]
    import email
    import email.policy
    import uuid

    from tests.soap_helpers import NS_XROAD
    from viss_bridge.facade.xroad_headers import XRoadId, request_envelope

    consumer, _ = narrow
    parts = demo_catalog.get("fpr_person").owner.split("/")
    service = XRoadId("SERVICE", parts[0], parts[1], parts[2], parts[3], "getWsdl")
    body = etree.Element(f"{{{NS_XROAD}}}getWsdl")
    etree.SubElement(body, f"{{{NS_XROAD}}}serviceCode").text = "fpr_person"
    response = consumer.post(tls_bridge.xroad, request_envelope(consumer.client_id, service, body, str(uuid.uuid4())))
    assert response.status_code == 200, response.text
    message = email.message_from_bytes(b"Content-Type: " + response.headers["Content-Type"].encode() + b"\r\n\r\n"
                                       + response.content, policy=email.policy.HTTP)
    _, wsdl_part = list(message.iter_parts())
    wsdl = etree.fromstring(wsdl_part.get_payload(decode=True))
    assert record_elements(wsdl, "fpr_person_record") == ["person_code", "first_name", "last_name"]
