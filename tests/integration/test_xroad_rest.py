"""X-Road REST (PR-REST 1.0, ``/r1/...``) over real HTTP (issue 13 item 3).

The same record as /xroad SOAP (and /rest) for every demo dataset; every SOAP fault case with its
PR-REST error (status, ``type``, ``X-Road-Error``, the UUID in the log); one quota across /xroad, /rest
and /r1; the metaservices; the X-Road response headers with a request hash recomputed from the log;
an /r1 exchange exported from the log as evidence and verified.
"""

from __future__ import annotations

import base64
import hashlib
import json
import sqlite3
import subprocess
import sys
import time
import uuid
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import zeep
from lxml import etree
from openapi_spec_validator import validate

from tests.access_helpers import registry_for
from tests.conftest import BANK_CONSUMER, DEMO_CONSUMER, EDUCATION_CONSUMER, RunningBridge, cli, start_bridge
from tests.integration.test_answer_accounting import LogSwitch, catalog_get_record
from tests.msglog_helpers import log_env
from tests.soap_helpers import normalise, parse_fault, post, xroad_headers, xroad_lookup
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.catalog.values import record_to_python

FPR = "LV/GOV/90000100015/FPR"
UR = "LV/GOV/90000200020/UR"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory, dev_pki) -> Iterator[RunningBridge]:  # type: ignore[no-untyped-def]
    data = tmp_path_factory.mktemp("r1")
    log_db = data / "bridge-msglog.sqlite"  # where LogSwitch expects it
    bridge = start_bridge(data, workers=2, size=40, extra_env=log_env(dev_pki, f"sqlite:///{log_db}"))
    bridge.log_db = log_db  # type: ignore[attr-defined]
    bridge.cli_env = {**bridge.env(), **log_env(dev_pki, f"sqlite:///{log_db}")}  # type: ignore[attr-defined]
    yield bridge
    bridge.stop()


@pytest.fixture(scope="module")
def catalog(node: RunningBridge):  # type: ignore[no-untyped-def]
    return load_catalog(node.catalog_dir)


def r1(node: RunningBridge, path: str, client: str | None = DEMO_CONSUMER, headers: dict[str, str] | None = None,
       method: str = "GET", **params: Any) -> requests.Response:
    sent = {"X-Road-Client": client} if client else {}
    sent.update(headers or {})
    return requests.request(method, f"{node.url}/r1/{path}", params=params, headers=sent, timeout=30)


def service(catalog: Any, dataset: str) -> str:
    return f"{catalog.get(dataset).owner}/{dataset}"


def log_rows(node: RunningBridge, where: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
    with sqlite3.connect(node.log_db, timeout=30) as conn:  # type: ignore[attr-defined]
        conn.row_factory = sqlite3.Row
        return conn.execute(f"SELECT direction, body, status, fault_code, fault_id, endpoint, dialect, client, service, "
                            f"message_id, user_id, exchange_id FROM msglog_record WHERE {where} ORDER BY seq",
                            args).fetchall()


def assert_error(response: requests.Response, status: int, kind: str, node: RunningBridge, *, logged: bool = True,
                 x_road_error: bool = True, fault_code: str | None = None) -> dict[str, Any]:
    """A PR-REST error: status, {type, message, detail}, X-Road-Error; its detail UUID finds the logged answer."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    error = response.json()
    assert set(error) == {"type", "message", "detail"} and error["type"] == kind and error["message"]
    assert response.headers.get("X-Road-Error") == (kind if x_road_error else None)
    uuid.UUID(error["detail"])
    uuid.UUID(response.headers["X-Road-Request-Id"])
    rows = log_rows(node, "fault_id = ?", (error["detail"],))
    if logged:
        assert [(r["direction"], r["endpoint"], r["status"]) for r in rows] == [("response", "r1", status)]
        assert rows[0]["fault_code"] == (fault_code or kind)
        assert rows[0]["exchange_id"] == response.headers["X-Road-Request-Id"]
        assert rows[0]["body"].startswith(f"HTTP/1.1 {status} ".encode()) and rows[0]["body"].endswith(response.content)
    else:
        assert rows == []
    return error  # type: ignore[no-any-return]


def feed(node: RunningBridge, catalog: Any, dataset: str, client: str = DEMO_CONSUMER, limit: int = 100) -> list[Any]:
    since, changes = 0, []
    while True:
        page = r1(node, f"{service(catalog, dataset)}/changes", client, since=since, limit=limit)
        assert page.status_code == 200, page.text
        body = page.json()
        changes += body["changes"]
        if not body["has_more"]:
            return changes
        since = body["next_since"]


# -- the same record on every face ----------------------------------------------------------------------

@pytest.mark.parametrize("dataset,client", [("fpr_person", DEMO_CONSUMER), ("ur_company", DEMO_CONSUMER),
                                            ("vsaa_social_insurance", DEMO_CONSUMER), ("vzd_address", DEMO_CONSUMER),
                                            ("csdd_vehicle", DEMO_CONSUMER), ("viis_education", EDUCATION_CONSUMER)])
def test_r1_and_soap_answer_the_same_record_field_by_field(node, catalog, dataset, client) -> None:  # type: ignore[no-untyped-def]
    definition = catalog.get(dataset)
    soap = zeep.Client(f"{node.xroad}?wsdl")
    keys = [c["key"] for c in r1(node, f"{service(catalog, dataset)}/changes", client, limit=5).json()["changes"]]
    assert len(keys) == 5
    nested = 0
    for key in keys:
        answer = r1(node, f"{service(catalog, dataset)}/{key[definition.key[0]]}", client)
        assert answer.status_code == 200, answer.text
        assert r1(node, service(catalog, dataset), client, **key).json() == answer.json()  # ?field=value
        rest = requests.get(f"{node.url}/rest/{dataset}/{key[definition.key[0]]}", headers={"X-Road-Client": client},
                            timeout=30)
        assert rest.json() == answer.json()
        from_r1 = normalise(record_to_python([f for f in definition.fields if f.name in answer.json()], answer.json()))
        call = getattr(soap.service, dataset)(**key, _soapheaders=xroad_headers(client, definition))
        assert from_r1 == normalise(call.body.record)
        nested += sum(1 for f in definition.fields if f.fields and from_r1.get(f.name))
    assert nested or dataset == "vzd_address"  # nested objects and lists were compared too
    if dataset == "csdd_vehicle":  # an object, a list of objects holding lists, a list of values
        assert nested >= 10


def test_searches_on_r1_are_the_rest_searches(node, catalog) -> None:  # type: ignore[no-untyped-def]
    """A search is a query on the dataset's own path (docs/rest.md), answered by the same guarded search."""
    vehicles = [c["record"] for c in feed(node, catalog, "csdd_vehicle")]
    fuel = Counter(v["technical"]["fuel"] for v in vehicles).most_common(1)[0][0]
    expected = [v["plate"] for v in vehicles if v["technical"]["fuel"] == fuel]
    plates, cursor = [], None
    while True:
        params = {"technical.fuel": fuel, "page_size": 2, **({"cursor": cursor} if cursor else {})}
        page = r1(node, service(catalog, "csdd_vehicle"), **params)
        assert page.status_code == 200, page.text
        rest = requests.get(f"{node.url}/rest/csdd_vehicle", params=params, headers={"X-Road-Client": DEMO_CONSUMER},
                            timeout=30)
        assert page.json() == rest.json() and page.json()["total"] == len(expected)
        plates += [r["plate"] for r in page.json()["records"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            break
    assert sorted(plates) == sorted(expected) and len(set(plates)) == len(plates) > 2  # every match once
    surname = feed(node, catalog, "fpr_person")[0]["record"]["last_name"]
    found = r1(node, f"{FPR}/fpr_person", last_name=surname).json()
    assert found["total"] >= 1 and all(r["last_name"] == surname for r in found["records"])
    document = r1(node, f"{FPR}/getOpenAPI", serviceCode="fpr_person").json()
    names = {p["name"] for p in document["paths"]["/"]["get"]["parameters"]}
    assert {"person_code", "last_name", "page", "page_size", "cursor"} <= names
    assert "fpr_person_search_page" in document["components"]["schemas"]
    assert_error(r1(node, f"{FPR}/fpr_person", first_name="x"), 400, "Client.BadRequest", node,
                 fault_code="Client.InvalidRequest")  # no index on first_name


# -- the X-Road headers -----------------------------------------------------------------------------------

def test_response_headers_and_a_request_hash_recomputed_from_the_log(node, catalog) -> None:  # type: ignore[no-untyped-def]
    code = feed(node, catalog, "fpr_person")[1]["key"]["person_code"]
    message_id = str(uuid.uuid4())
    answer = r1(node, f"{FPR}/fpr_person/{code}", headers={
        "X-Road-Id": message_id, "X-Road-UserId": "LV01019012345", "X-Road-Issue": "case-42",
        "X-Road-Represented-Party": "COM/40003000001", "Authorization": "Bearer secret-token"})
    assert answer.status_code == 200, answer.text
    headers = answer.headers
    assert headers["X-Road-Client"] == DEMO_CONSUMER and headers["X-Road-Service"] == f"{FPR}/fpr_person"
    assert headers["X-Road-Id"] == message_id and "X-Road-Error" not in headers
    rows = log_rows(node, "exchange_id = ?", (headers["X-Road-Request-Id"],))  # the request id finds the exchange
    assert [r["direction"] for r in rows] == ["request", "response"]
    request, response = rows[0]["body"], rows[1]["body"]
    assert request.startswith(f"GET /r1/{FPR}/fpr_person/{code} HTTP/1.1\r\n".encode())
    assert b"X-Road-Represented-Party: COM/40003000001\r\n" in request and b"X-Road-Issue: case-42\r\n" in request
    assert b"Authorization: [redacted]" in request and b"secret-token" not in request
    assert request.endswith(b"\r\n\r\n")  # no body: PR-REST's hash is SHA-512 of the head alone
    assert headers["X-Road-Request-Hash"] == base64.b64encode(hashlib.sha512(request).digest()).decode()
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(answer.content)
    assert f"X-Road-Request-Hash: {headers['X-Road-Request-Hash']}\r\n".encode() in response
    assert (rows[0]["endpoint"], rows[0]["dialect"], rows[0]["client"]) == ("r1", "r1", DEMO_CONSUMER)
    assert rows[0]["service"] == f"{FPR}/fpr_person" and rows[0]["message_id"] == message_id
    assert rows[0]["user_id"] == "LV01019012345"
    found = cli("log", "find", "--message-id", message_id, env=node.env()).stdout
    assert "2 record(s)" in found

    # A body (X-Road allows one on any method): SHA512(SHA512(head) || SHA512(body)); no X-Road-Id: a new UUID.
    body = b'{"ignored": true}'
    sent = requests.get(f"{node.url}/r1/{FPR}/fpr_person/{code}", data=body, timeout=30,
                        headers={"X-Road-Client": DEMO_CONSUMER, "Content-Type": "application/json"})
    assert sent.status_code == 200
    uuid.UUID(sent.headers["X-Road-Id"])
    (logged, _) = log_rows(node, "exchange_id = ?", (sent.headers["X-Road-Request-Id"],))
    head, tail = logged["body"][:-len(body)], logged["body"][-len(body):]
    assert tail == body and head.endswith(b"\r\n\r\n") and logged["message_id"] == sent.headers["X-Road-Id"]
    expected = hashlib.sha512(hashlib.sha512(head).digest() + hashlib.sha512(body).digest()).digest()
    assert sent.headers["X-Road-Request-Hash"] == base64.b64encode(expected).decode()


# -- every SOAP fault case, and its PR-REST error --------------------------------------------------------

def without_client_header(envelope: bytes) -> bytes:
    tree = etree.fromstring(envelope)
    client = tree.find(".//{http://x-road.eu/xsd/xroad.xsd}client")
    client.getparent().remove(client)
    return etree.tostring(tree)


def test_fault_cases_have_their_r1_errors(node, catalog) -> None:  # type: ignore[no-untyped-def]
    person = catalog.get("fpr_person")
    code = feed(node, catalog, "fpr_person")[0]["key"]["person_code"]
    lookup = xroad_lookup(person, DEMO_CONSUMER, {"person_code": code})

    fault = parse_fault(post(node.xroad, lookup.replace(b"fpr_person", b"no_such_dataset")))
    assert fault.code == "Server.ServerProxy.UnknownService"
    assert_error(r1(node, f"{FPR}/no_such_dataset/{code}"), 404, fault.code, node)
    assert_error(r1(node, f"{UR}/fpr_person/{code}"), 404, fault.code, node)  # another provider's service code

    fault = parse_fault(post(node.xroad, lookup.replace(b"90000100015", b"99999999999")))
    assert fault.code == "Server.ServerProxy.UnknownMember"
    assert_error(r1(node, f"LV/GOV/99999999999/FPR/fpr_person/{code}"), 404, fault.code, node)
    assert_error(r1(node, f"EE/GOV/90000100015/FPR/fpr_person/{code}"), 404, fault.code, node)

    fault = parse_fault(post(node.xroad, xroad_lookup(person, BANK_CONSUMER, {"person_code": code})))
    assert fault.code == "Server.ServerProxy.AccessDenied"
    denied = assert_error(r1(node, f"{FPR}/fpr_person/{code}", BANK_CONSUMER), 403, fault.code, node)
    assert denied["message"] == fault.string

    fault = parse_fault(post(node.xroad, without_client_header(lookup)))
    assert fault.code == "Client.MissingHeaderField"
    missing = r1(node, f"{FPR}/fpr_person/{code}", None)
    assert_error(missing, 400, fault.code, node)
    assert code.encode() not in missing.content.replace(f"/{code}".encode(), b"")

    fault = parse_fault(post(node.catalog, catalog_get_record("LV/GOV/not valid", "fpr_person", code)))
    assert fault.code == "Client.InvalidClientIdentifier"
    assert_error(r1(node, f"{FPR}/fpr_person/{code}", "LV/GOV/not valid"), 400, fault.code, node)
    assert_error(r1(node, f"{FPR}/fpr_person/{code}", "LV/GOV"), 400, fault.code, node)

    # malformed key, paging and path: SOAP's Client.InvalidRequest is PR-REST's Client.BadRequest
    fault = parse_fault(post(node.xroad, xroad_lookup(person, DEMO_CONSUMER, {"person_code": ""})))
    assert fault.code == "Client.InvalidRequest"
    bad = assert_error(r1(node, f"{FPR}/fpr_person", person_code=""), 400, "Client.BadRequest", node,
                       fault_code=fault.code)
    assert bad["message"] == fault.string
    assert_error(r1(node, f"{FPR}/fpr_person", wrong=code), 400, "Client.BadRequest", node, fault_code=fault.code)
    assert_error(r1(node, f"{FPR}/fpr_person/changes", limit=0), 400, "Client.BadRequest", node, fault_code=fault.code)
    assert_error(r1(node, "LV/GOV"), 400, "Client.BadRequest", node, fault_code=fault.code)
    assert_error(r1(node, f"{FPR}/fpr_person/{code}", headers={"X-Road-Represented-Party": "A/B/C"}), 400,
                 "Client.BadRequest", node, fault_code=fault.code)
    assert_error(r1(node, f"LV/GOV/9000010001!/FPR/fpr_person/{code}"), 400, "Client.InvalidServiceIdentifier", node)

    # no such record: SOAP answers without record; here the service's own 404, not an X-Road error
    empty = post(node.xroad, xroad_lookup(person, DEMO_CONSUMER, {"person_code": "000000-00000"}))
    assert empty.status_code == 200 and b"<tns:fpr_personResponse/>" in empty.content
    assert_error(r1(node, f"{FPR}/fpr_person/000000-00000"), 404, "Client.NotFound", node, x_road_error=False)

    posted = r1(node, f"{FPR}/fpr_person/{code}", method="POST")
    assert_error(posted, 405, "Client.MethodNotAllowed", node)
    assert posted.headers["Allow"] == "GET, HEAD"
    head = r1(node, f"{FPR}/fpr_person/{code}", method="HEAD")  # GET's status and headers, no body
    assert head.status_code == 200 and head.content == b"" and head.headers["X-Road-Service"] == f"{FPR}/fpr_person"


def test_restricted_person_is_withheld_on_r1(node, catalog) -> None:  # type: ignore[no-untyped-def]
    code = feed(node, catalog, "fpr_person")[-1]["key"]["person_code"]
    cli("access", "restrict", code, "fpr_person", "--reason", "asked at the helpdesk", env=node.env())
    fault = parse_fault(post(node.xroad, xroad_lookup(catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": code})))
    assert fault.code == "Server.ServerProxy.AccessDenied.SubjectRestriction"
    response = r1(node, f"{FPR}/fpr_person/{code}")
    assert_error(response, 403, fault.code, node)
    assert b"first_name" not in response.content
    after = {c["key"]["person_code"]: c for c in feed(node, catalog, "fpr_person")}
    assert after[code]["withheld"] is True and "record" not in after[code]


def test_log_down_is_logging_failed_and_spends_no_quota(node, catalog) -> None:  # type: ignore[no-untyped-def]
    client = "LV/GOV/90000077777/R1-LOGDOWN"
    cli("clients", "add", client, env=node.env())
    cli("clients", "grant", client, "fpr_person", "--quota", "3", "--purpose", "test", env=node.env())
    registry = registry_for(node)
    (permission,) = registry.permissions(client_id=client)
    code = feed(node, catalog, "fpr_person")[2]["key"]["person_code"]
    switch = LogSwitch(node)
    switch.break_()
    try:
        fault = parse_fault(post(node.xroad, xroad_lookup(catalog.get("fpr_person"), client, {"person_code": code})))
        assert fault.code == "Server.ServerProxy.IOError.LoggingFailed"
        response = r1(node, f"{FPR}/fpr_person/{code}", client)
        assert_error(response, 503, fault.code, node, logged=False)
        assert code.encode() not in response.content
        assert registry.permission(permission.number).used == 0
    finally:
        switch.repair()
    assert r1(node, f"{FPR}/fpr_person/{code}", client).status_code == 200
    assert registry.permission(permission.number).used == 1


def test_a_quota_is_one_quota_across_xroad_rest_and_r1(node, catalog) -> None:  # type: ignore[no-untyped-def]
    client = "LV/GOV/90000077777/R1-QUOTA"
    cli("clients", "add", client, env=node.env())
    cli("clients", "grant", client, "fpr_person", "--quota", "6", "--purpose", "quota test", env=node.env())
    codes = [c["key"]["person_code"] for c in feed(node, catalog, "fpr_person")[3:10]]
    definition = catalog.get("fpr_person")
    for code in codes[:2]:
        assert post(node.xroad, xroad_lookup(definition, client, {"person_code": code})).status_code == 200
    for code in codes[2:4]:
        assert requests.get(f"{node.url}/rest/fpr_person/{code}", headers={"X-Road-Client": client},
                            timeout=30).status_code == 200
    for code in codes[4:6]:
        assert r1(node, f"{FPR}/fpr_person/{code}", client).status_code == 200
    soap = parse_fault(post(node.xroad, xroad_lookup(definition, client, {"person_code": codes[6]})))
    assert soap.code == "Server.ServerProxy.AccessDenied" and "quota" in soap.string
    rest = requests.get(f"{node.url}/rest/fpr_person/{codes[6]}", headers={"X-Road-Client": client}, timeout=30)
    assert rest.status_code == 403 and rest.json()["fault_code"] == soap.code
    refused = assert_error(r1(node, f"{FPR}/fpr_person/{codes[6]}", client), 403, soap.code, node)
    assert "quota of 6" in refused["message"]
    (permission,) = registry_for(node).permissions(client_id=client)
    assert permission.used == 6


# -- metaservices (PR-MREST) --------------------------------------------------------------------------------

def soap_metaservice(node: RunningBridge, provider: str, client: str, method: str) -> list[str]:
    """The serviceCodes a SOAP listMethods / allowedMethods call at /xroad answers."""
    from viss_bridge.facade.xroad_headers import NS_ID, NS_XROAD, XRoadId, request_envelope

    parts = provider.split("/")
    target = XRoadId("SERVICE", *parts[:3], subsystem=parts[3], service_code=method)
    envelope = request_envelope(client, target, etree.Element(f"{{{NS_XROAD}}}{method}"), str(uuid.uuid4()))
    answer = post(node.xroad, envelope)
    assert answer.status_code == 200, answer.text
    (result,) = etree.fromstring(answer.content).iter(f"{{{NS_XROAD}}}{method}Response")  # the Body's, not the header
    return [e.text for e in result.iter(f"{{{NS_ID}}}serviceCode")]


def test_list_methods_and_allowed_methods(node, catalog) -> None:  # type: ignore[no-untyped-def]
    listed = r1(node, f"{FPR}/listMethods", BANK_CONSUMER)
    assert listed.status_code == 200 and listed.headers["X-Road-Service"] == f"{FPR}/listMethods"
    (entry,) = listed.json()["service"]
    assert entry == {"object_type": "SERVICE", "xroad_instance": "LV", "member_class": "GOV",
                     "member_code": "90000100015", "subsystem_code": "FPR", "service_code": "fpr_person",
                     "service_type": "OPENAPI", "endpoint_list": entry["endpoint_list"]}
    assert {"method": "GET", "path": "/*"} in entry["endpoint_list"]
    assert {"method": "GET", "path": "/changes"} in entry["endpoint_list"]
    assert r1(node, f"{FPR}/allowedMethods", BANK_CONSUMER).json() == {"service": []}  # bank: no persons
    assert [s["service_code"] for s in r1(node, f"{UR}/allowedMethods", BANK_CONSUMER).json()["service"]] == \
        ["ur_company"]
    assert [s["service_code"] for s in r1(node, f"{FPR}/allowedMethods").json()["service"]] == ["fpr_person"]
    for provider, client in ((FPR, BANK_CONSUMER), (UR, BANK_CONSUMER), (FPR, DEMO_CONSUMER)):
        for method in ("listMethods", "allowedMethods"):  # the same lists as SOAP's metaservices (one policy)
            codes = [s["service_code"] for s in r1(node, f"{provider}/{method}", client).json()["service"]]
            soap = soap_metaservice(node, provider, client, method)
            # SOAP's <dataset>Search is a service of its own; on /r1 a search is an endpoint of the dataset's service
            assert codes == [c for c in soap if not (c.endswith("Search") and c.removesuffix("Search") in codes)], (provider, client, method)
            assert ("fpr_personSearch" in soap) == ("fpr_person" in codes)  # fpr_person has indexes
    assert_error(r1(node, f"{FPR}/listMethods/more"), 404, "Server.ServerProxy.UnknownService", node)
    assert_error(r1(node, f"{FPR}/listMethods", x=1), 400, "Client.BadRequest", node,
                 fault_code="Client.InvalidRequest")


def test_get_openapi_is_valid_and_narrowed_to_the_caller(node, catalog) -> None:  # type: ignore[no-untyped-def]
    client = "LV/GOV/90000077777/R1-NARROW"
    registry = registry_for(node)
    registry.add_client(client, "narrow")
    registry.grant(client, "fpr_person", purpose="names", legal_basis="law", fields=["first_name", "last_name"])
    full = r1(node, f"{FPR}/getOpenAPI", serviceCode="fpr_person")
    assert full.status_code == 200, full.text
    document = full.json()
    validate(document)
    assert document["servers"] == [{"url": f"{node.url}/r1/{FPR}/fpr_person"}]
    assert {"/", "/{person_code}", "/changes"} <= set(document["paths"])
    assert "birth_date" in document["components"]["schemas"]["fpr_person_record"]["properties"]
    error = document["paths"]["/{person_code}"]["get"]["responses"]["403"]["content"]["application/json"]
    assert error["schema"] == {"$ref": "#/components/schemas/XRoadError"}
    narrow = r1(node, f"{FPR}/getOpenAPI", client, serviceCode="fpr_person").json()
    validate(narrow)
    assert set(narrow["components"]["schemas"]["fpr_person_record"]["properties"]) == \
        {"person_code", "first_name", "last_name"}
    # served as described: the narrowed client reads exactly those fields
    code = feed(node, catalog, "fpr_person")[4]["key"]["person_code"]
    assert set(r1(node, f"{FPR}/fpr_person/{code}", client).json()) == {"person_code", "first_name", "last_name"}
    assert_error(r1(node, f"{FPR}/getOpenAPI", BANK_CONSUMER, serviceCode="fpr_person"), 403,
                 "Server.ServerProxy.AccessDenied", node)
    assert_error(r1(node, f"{FPR}/getOpenAPI", serviceCode="ur_company"), 404, "Server.ServerProxy.UnknownService", node)
    assert_error(r1(node, f"{FPR}/getOpenAPI"), 400, "Client.BadRequest", node, fault_code="Client.InvalidRequest")


def test_schemathesis_on_get_openapi_finds_only_conforming_answers(node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bounded (10 examples per operation): what getOpenAPI describes is what /r1 answers."""
    command = [str(Path(sys.executable).with_name("schemathesis")), "run",
               f"{node.url}/r1/{FPR}/getOpenAPI?serviceCode=fpr_person", "--header", f"X-Road-Client: {DEMO_CONSUMER}",
               "--max-examples", "10", "--workers", "1", "--seed", "13", "--mode", "positive", "--phases",
               "coverage,fuzzing", "--checks", "not_a_server_error,response_schema_conformance,status_code_conformance"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert " generated" in run.stdout


# -- the log side: sealed, exported, verified -----------------------------------------------------------------

def wait_sealed(node: RunningBridge, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(node.log_db, timeout=30) as conn:  # type: ignore[attr-defined]
            head, sealed = conn.execute("SELECT h.seq, s.sealed_seq FROM msglog_head h JOIN msglog_sealer s "
                                        "ON s.node_id = h.node_id").fetchone()
        if head == sealed:
            return
        time.sleep(0.2)
    raise AssertionError(f"not sealed within {timeout} s")


def test_an_r1_exchange_is_sealed_exported_and_verified(node, catalog, dev_pki, tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = feed(node, catalog, "fpr_person")[7]["key"]["person_code"]
    answer = r1(node, f"{FPR}/fpr_person/{code}", headers={"Cookie": "session=secret"})
    assert answer.status_code == 200
    exchange = answer.headers["X-Road-Request-Id"]
    wait_sealed(node)
    container = tmp_path / "r1.asice"
    cli("log", "export", "--exchange", exchange, "-o", str(container), env=node.cli_env)  # type: ignore[attr-defined]
    report = cli("evidence", "verify", str(container), "--trust", str(dev_pki.ca_cert))
    assert "EVIDENCE VALID" in report.stdout
    with zipfile.ZipFile(container) as archive:
        messages = {n: archive.read(n) for n in archive.namelist() if n.startswith("messages/")}
        manifest = archive.read("META-INF/manifest.xml")
        records = [json.loads(archive.read(n)) for n in archive.namelist() if n.startswith("records/")]
    assert [(r["endpoint"], r["direction"]) for r in records] == [("r1", "request"), ("r1", "response")]
    assert len(messages) == 2 and all(n.endswith(".http") for n in messages)  # HTTP messages, not XML
    assert b'manifest:media-type="message/http"' in manifest
    request = next(body for name, body in messages.items() if name.endswith("request.http"))
    response = next(body for name, body in messages.items() if name.endswith("response.http"))
    assert request.startswith(f"GET /r1/{FPR}/fpr_person/{code} HTTP/1.1\r\n".encode())
    assert b"Cookie: [redacted]" in request and b"secret" not in request
    assert response.endswith(answer.content)
    assert base64.b64encode(hashlib.sha512(request).digest()).decode() == answer.headers["X-Road-Request-Hash"]
