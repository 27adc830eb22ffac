"""The DAGR-style REST face over real HTTP (issue 13 items 1 and 2).

REST answers equal SOAP answers field by field; every SOAP fault case has its REST problem;
one quota whichever face spends it; restrictions, X-DAGR-Permission, the change feed, the message
log before the answer; the OpenAPI document is valid, narrowed, and survives a bounded schemathesis run.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import zeep
from openapi_spec_validator import validate

from tests.access_helpers import registry_for
from tests.conftest import BANK_CONSUMER, DEMO_CONSUMER, EDUCATION_CONSUMER, RunningBridge, cli, start_bridge
from tests.integration.test_answer_accounting import LogSwitch, catalog_get_record
from tests.soap_helpers import normalise, parse_fault, post, xroad_headers, xroad_lookup
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.catalog.values import record_to_python

PROBLEM = "urn:viss-bridge:problem:"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    bridge = start_bridge(tmp_path_factory.mktemp("rest"), workers=2, size=40)
    yield bridge
    bridge.stop()


@pytest.fixture(scope="module")
def catalog(node: RunningBridge):  # type: ignore[no-untyped-def]
    return load_catalog(node.catalog_dir)


def rest(node: RunningBridge, path: str, client: str | None = DEMO_CONSUMER, permission: str | None = None,
         **params: Any) -> requests.Response:
    headers = {"X-Road-Client": client} if client else {}
    if permission:
        headers["X-DAGR-Permission"] = permission
    return requests.get(f"{node.url}/rest/{path}", params=params, headers=headers, timeout=30)


def log_rows(node: RunningBridge, where: str, args: tuple[Any, ...]) -> list[sqlite3.Row]:
    path = Path(node.database_url.removeprefix("sqlite:///")).with_name("bridge-msglog.sqlite")
    with sqlite3.connect(path, timeout=30) as conn:
        conn.row_factory = sqlite3.Row
        return conn.execute(f"SELECT direction, body, status, fault_code, fault_id, endpoint, client, service "
                            f"FROM msglog_record WHERE {where} ORDER BY seq", args).fetchall()


def assert_problem(response: requests.Response, status: int, kind: str, code: str, node: RunningBridge,
                   logged: bool = True) -> dict[str, Any]:
    """An RFC 9457 answer of this status and type whose UUID finds the exchange in the message log."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == PROBLEM + kind and problem["status"] == status and problem["fault_code"] == code
    assert problem["title"] and problem["detail"]
    fault_id = problem["instance"].removeprefix("urn:uuid:")
    uuid.UUID(fault_id)
    rows = log_rows(node, "fault_id = ?", (fault_id,))
    if logged:
        assert [(r["direction"], r["endpoint"], r["status"]) for r in rows] == [("response", "rest", status)]
        assert rows[0]["body"].startswith(f"HTTP/1.1 {status} ".encode()) and fault_id.encode() in rows[0]["body"]
    else:
        assert rows == []
    return problem


def feed(node: RunningBridge, dataset: str, client: str = DEMO_CONSUMER, limit: int = 100,
         **headers: Any) -> list[dict[str, Any]]:
    """Every change of the feed, page by page."""
    since, changes = 0, []
    while True:
        page = rest(node, f"{dataset}/changes", client, since=since, limit=limit, **headers)
        assert page.status_code == 200, page.text
        body = page.json()
        changes += body["changes"]
        if not body["has_more"]:
            return changes
        assert body["next_since"] > since
        since = body["next_since"]


# -- the same record on both faces --------------------------------------------------------------------

@pytest.mark.parametrize("dataset,client", [("fpr_person", DEMO_CONSUMER), ("ur_company", DEMO_CONSUMER),
                                            ("vsaa_social_insurance", DEMO_CONSUMER), ("vzd_address", DEMO_CONSUMER),
                                            ("viis_education", EDUCATION_CONSUMER)])
def test_rest_and_soap_answer_the_same_record_field_by_field(node, catalog, dataset, client) -> None:  # type: ignore[no-untyped-def]
    definition = catalog.get(dataset)
    soap = zeep.Client(f"{node.xroad}?wsdl")
    keys = [c["key"] for c in rest(node, f"{dataset}/changes", client, limit=5).json()["changes"]]
    assert len(keys) == 5
    nested = 0
    for key in keys:
        answer = rest(node, f"{dataset}/{key[definition.key[0]]}", client)
        assert answer.status_code == 200 and answer.headers["Content-Type"] == "application/json", answer.text
        by_query = rest(node, dataset, client, **key)
        assert by_query.json() == answer.json()
        from_rest = normalise(record_to_python([f for f in definition.fields if f.name in answer.json()],
                                               answer.json()))
        call = getattr(soap.service, dataset)(**key, _soapheaders=xroad_headers(client, definition))
        from_soap = normalise(call.body.record if hasattr(call, "body") else call)
        assert from_rest == from_soap
        nested += sum(1 for f in definition.fields if f.fields and from_rest.get(f.name))
    assert nested or dataset == "vzd_address"  # the nested lists were compared too


def test_json_is_typed_as_the_manifest_says(node, catalog) -> None:  # type: ignore[no-untyped-def]
    (company,) = [c for c in feed(node, "ur_company") if c["record"].get("share_capital")][:1]
    record = company["record"]
    assert isinstance(record["share_capital"], str) and "E" not in record["share_capital"]  # exact decimal text
    assert len(record["registered"]) == 10 and record["registered"][4] == "-"  # ISO date
    assert isinstance(record["officers"], list) and set(record["officers"][0]) <= {"person_code", "role", "since"}
    insured = feed(node, "vsaa_social_insurance")[0]["record"]
    assert isinstance(insured["insured"], bool) and isinstance(insured["contribution_months"], int)


# -- every SOAP fault case, and its REST problem ---------------------------------------------------

def test_fault_cases_have_their_rest_problems(node, catalog, demo_world) -> None:  # type: ignore[no-untyped-def]
    person = catalog.get("fpr_person")
    code = feed(node, "fpr_person")[0]["key"]["person_code"]

    fault = parse_fault(post(node.xroad, xroad_lookup(person, DEMO_CONSUMER, {"person_code": code})
                             .replace(b"fpr_person", b"no_such_dataset")))
    assert fault.code == "Server.ServerProxy.UnknownService"
    assert_problem(rest(node, "no_such_dataset/1"), 404, "unknown-service", fault.code, node)
    assert_problem(rest(node, "no_such_dataset/changes"), 404, "unknown-service", fault.code, node)

    # no such record: SOAP answers an empty record, REST a 404 not-found problem (logged like any answer)
    empty = post(node.xroad, xroad_lookup(person, DEMO_CONSUMER, {"person_code": "000000-00000"}))
    assert empty.status_code == 200 and b"<tns:fpr_personResponse/>" in empty.content
    assert_problem(rest(node, "fpr_person/000000-00000"), 404, "not-found", "Client.NotFound", node)

    fault = parse_fault(post(node.xroad, xroad_lookup(person, BANK_CONSUMER, {"person_code": code})))
    assert fault.code == "Server.ServerProxy.AccessDenied"
    denied = assert_problem(rest(node, f"fpr_person/{code}", BANK_CONSUMER), 403, "access-denied", fault.code, node)
    assert denied["detail"] == fault.string and code.encode() not in rest(node, f"fpr_person/{code}", None).content
    assert_problem(rest(node, f"fpr_person/{code}", None), 403, "access-denied", fault.code, node)  # anonymous

    fault = parse_fault(post(node.xroad, xroad_lookup(person, DEMO_CONSUMER, {"person_code": ""})))
    assert fault.code == "Client.InvalidRequest"
    invalid = assert_problem(rest(node, "fpr_person", person_code=""), 400, "invalid-request", fault.code, node)
    assert invalid["detail"] == fault.string
    assert_problem(rest(node, "fpr_person", wrong=code), 400, "invalid-request", fault.code, node)
    assert_problem(rest(node, "fpr_person/changes", limit=0), 400, "invalid-request", fault.code, node)
    assert_problem(rest(node, "fpr_person/changes", since="soon"), 400, "invalid-request", fault.code, node)

    fault = parse_fault(post(node.catalog, catalog_get_record("LV/GOV/not valid", "fpr_person", code)))
    assert fault.code == "Client.InvalidClientIdentifier"
    assert_problem(rest(node, f"fpr_person/{code}", "LV/GOV/not valid"), 400, "invalid-client", fault.code, node)


def test_restricted_person_is_withheld_on_rest(node, catalog) -> None:  # type: ignore[no-untyped-def]
    changes = feed(node, "fpr_person")
    code = changes[-1]["key"]["person_code"]
    cli("access", "restrict", code, "fpr_person", "--reason", "asked at the helpdesk", env=node.env())
    fault = parse_fault(post(node.xroad, xroad_lookup(catalog.get("fpr_person"), DEMO_CONSUMER, {"person_code": code})))
    assert fault.code == "Server.ServerProxy.AccessDenied.SubjectRestriction"
    response = rest(node, f"fpr_person/{code}")
    assert_problem(response, 403, "subject-restriction", fault.code, node)
    assert b"first_name" not in response.content
    after = {c["key"]["person_code"]: c for c in feed(node, "fpr_person")}
    assert after[code]["withheld"] is True and "record" not in after[code]
    assert all("record" in c for k, c in after.items() if k != code)


def test_log_down_is_503_and_spends_no_quota(node, catalog) -> None:  # type: ignore[no-untyped-def]
    client = "LV/GOV/90000077777/REST-LOGDOWN"
    cli("clients", "add", client, env=node.env())
    cli("clients", "grant", client, "fpr_person", "--quota", "3", "--purpose", "test", env=node.env())
    registry = registry_for(node)
    (permission,) = registry.permissions(client_id=client)
    code = feed(node, "fpr_person")[2]["key"]["person_code"]
    switch = LogSwitch(node)
    switch.break_()
    try:
        fault = parse_fault(post(node.xroad, xroad_lookup(catalog.get("fpr_person"), client, {"person_code": code})))
        assert fault.code == "Server.ServerProxy.IOError.LoggingFailed"
        response = rest(node, f"fpr_person/{code}", client)
        assert_problem(response, 503, "logging-failed", fault.code, node, logged=False)
        assert code.encode() not in response.content
        assert registry.permission(permission.number).used == 0
    finally:
        switch.repair()
    assert rest(node, f"fpr_person/{code}", client).status_code == 200
    assert registry.permission(permission.number).used == 1


# -- counting, choosing, logging ---------------------------------------------------------------------

def test_a_quota_is_one_quota_whichever_face_spends_it(node, catalog) -> None:  # type: ignore[no-untyped-def]
    client = "LV/GOV/90000077777/REST-QUOTA"
    cli("clients", "add", client, env=node.env())
    cli("clients", "grant", client, "fpr_person", "--quota", "4", "--purpose", "quota test", env=node.env())
    codes = [c["key"]["person_code"] for c in feed(node, "fpr_person")[3:8]]
    definition = catalog.get("fpr_person")
    for code in codes[:2]:
        assert post(node.xroad, xroad_lookup(definition, client, {"person_code": code})).status_code == 200
    for code in codes[2:4]:
        assert rest(node, f"fpr_person/{code}", client).status_code == 200
    soap = parse_fault(post(node.xroad, xroad_lookup(definition, client, {"person_code": codes[4]})))
    assert soap.code == "Server.ServerProxy.AccessDenied" and "quota" in soap.string
    refused = assert_problem(rest(node, f"fpr_person/{codes[4]}", client), 403, "access-denied", soap.code, node)
    assert "quota of 4" in refused["detail"]
    mine = rest(node, "current_user_permissions", client).json()
    assert mine["client"] == client and mine["authenticated_by"] == "header"
    (permission,) = mine["permissions"]
    assert permission["use_count"] == 4 and permission["use_count_quota"] == 4 and permission["status"] == "exhausted"
    assert permission["service_name"] == "fpr_person" and permission["purpose_of_use"] == "quota test"
    assert permission["valid_from"] and permission["valid_to"] is None and permission["permission_number"]
    tree = permission["access_control_tree"]
    assert tree["service_name"] == "fpr_person" and all(p["readable"] for p in tree["properties"])
    addresses = next(p for p in tree["properties"] if p["name"] == "addresses")
    assert [p["name"] for p in addresses["properties"]] == ["address_code", "kind", "valid_from"]


def test_x_dagr_permission_chooses_and_is_required_when_ambiguous(node, catalog) -> None:  # type: ignore[no-untyped-def]
    client = "LV/GOV/90000077777/REST-TWO"
    registry = registry_for(node)
    registry.add_client(client, "two permissions")
    narrow = registry.grant(client, "fpr_person", purpose="name check", legal_basis="law", fields=["last_name"])
    full = registry.grant(client, "fpr_person", purpose="full", legal_basis="law", quota=10)
    code = feed(node, "fpr_person")[5]["key"]["person_code"]

    ambiguous = assert_problem(rest(node, f"fpr_person/{code}", client), 400, "permission-required",
                               "Client.InvalidRequest.PermissionRequired", node)
    assert narrow.number in ambiguous["detail"] and full.number in ambiguous["detail"]
    assert_problem(rest(node, "fpr_person/changes", client), 400, "permission-required",
                   "Client.InvalidRequest.PermissionRequired", node)

    chosen = rest(node, f"fpr_person/{code}", client, permission=narrow.number)
    assert chosen.status_code == 200 and chosen.headers["X-DAGR-Permission"] == narrow.number
    assert chosen.json() == {"person_code": code, "last_name": chosen.json()["last_name"]}
    everything = rest(node, f"fpr_person/{code}", client, permission=full.number)
    assert "birth_date" in everything.json() and everything.headers["X-DAGR-Permission"] == full.number
    assert registry.permission(full.number).used == 1  # counted against the one named
    pages = feed(node, "fpr_person", client, limit=50, permission=narrow.number)
    assert all(set(c["record"]) == {"person_code", "last_name"} for c in pages if "record" in c)

    foreign = registry.permissions(client_id=DEMO_CONSUMER, dataset="fpr_person")[0].number
    assert_problem(rest(node, f"fpr_person/{code}", client, permission=foreign), 403, "access-denied",
                   "Server.ServerProxy.AccessDenied", node)
    # SOAP names no permission: the policy's rule (oldest first) still decides there
    answer = post(node.xroad, xroad_lookup(catalog.get("fpr_person"), client, {"person_code": code}))
    assert answer.status_code == 200 and b"birth_date" not in answer.content
    # the client's OpenAPI shows the fields some permission reads; with a number, that permission's
    record = rest(node, "openapi.json", client).json()["components"]["schemas"]["fpr_person_record"]
    assert "birth_date" in record["properties"]
    record = rest(node, "openapi.json", client, permission=narrow.number).json()["components"]["schemas"]
    assert set(record["fpr_person_record"]["properties"]) == {"person_code", "last_name"}


def test_every_exchange_is_logged_with_request_line_headers_and_body(node) -> None:  # type: ignore[no-untyped-def]
    code = feed(node, "fpr_person")[6]["key"]["person_code"]
    answer = requests.get(f"{node.url}/rest/fpr_person/{code}", timeout=30,
                          headers={"X-Road-Client": DEMO_CONSUMER, "Authorization": "Bearer secret-token"})
    assert answer.status_code == 200
    exchange = answer.headers["X-Exchange-Id"]
    rows = log_rows(node, "exchange_id = ?", (exchange,))
    assert [r["direction"] for r in rows] == ["request", "response"]
    request, response = rows[0]["body"], rows[1]["body"]
    assert request.startswith(f"GET /rest/fpr_person/{code} HTTP/1.1\r\n".encode())
    assert f"X-Road-Client: {DEMO_CONSUMER}\r\n".encode() in request
    assert b"Authorization: [redacted]" in request and b"secret-token" not in request
    assert response.startswith(b"HTTP/1.1 200 OK\r\n") and response.endswith(answer.content)
    assert b"Content-Type: application/json\r\n" in response
    assert rows[0]["client"] == DEMO_CONSUMER and rows[0]["service"] == "fpr_person"
    found = cli("log", "find", "--exchange", exchange, env=node.env()).stdout
    assert "2 record(s)" in found


def test_changes_walk_every_record_once(node, catalog) -> None:  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.db import make_engine

    engine = make_engine(node.database_url)
    try:
        total = DatasetStore(engine).count(catalog.get("vsaa_social_insurance"))
    finally:
        engine.dispose()
    changes = feed(node, "vsaa_social_insurance", limit=7)
    keys = [c["key"]["person_code"] for c in changes]
    assert len(keys) == len(set(keys)) == total > 7
    assert [c["seq"] for c in changes] == sorted(c["seq"] for c in changes)
    last = rest(node, "vsaa_social_insurance/changes", since=changes[-1]["seq"]).json()
    assert last == {"changes": [], "next_since": changes[-1]["seq"], "has_more": False}


def test_service_list_says_what_the_caller_may_call(node) -> None:  # type: ignore[no-untyped-def]
    services = {s["service_name"]: s for s in rest(node, "service_list", BANK_CONSUMER).json()["services"]}
    assert services["ur_company"]["allowed"] and not services["fpr_person"]["allowed"]
    assert services["fpr_person"]["record_path"] == "/rest/fpr_person/{person_code}"
    assert services["fpr_person"]["key"] == ["person_code"] and services["fpr_person"]["access"] == "restricted"


# -- OpenAPI -------------------------------------------------------------------------------------------

def test_openapi_is_valid_and_narrowed_to_the_caller(node) -> None:  # type: ignore[no-untyped-def]
    client = "LV/GOV/90000077777/REST-NARROW"
    registry = registry_for(node)
    registry.add_client(client, "narrow")
    registry.grant(client, "fpr_person", purpose="names", legal_basis="law", fields=["first_name", "last_name"])
    documents = {who: rest(node, "openapi.json", who).json() for who in (DEMO_CONSUMER, BANK_CONSUMER, client, None)}
    for document in documents.values():
        validate(document)  # openapi-spec-validator: OpenAPI 3.1
        assert document["openapi"] == "3.1.0"
    demo = documents[DEMO_CONSUMER]["paths"]
    assert "/rest/fpr_person/{person_code}" in demo and "/rest/viis_education/changes" not in demo
    bank = documents[BANK_CONSUMER]["paths"]
    assert "/rest/ur_company/{reg_number}" in bank and "/rest/fpr_person/{person_code}" not in bank
    narrow = documents[client]["components"]["schemas"]["fpr_person_record"]
    assert set(narrow["properties"]) == {"person_code", "first_name", "last_name"}
    assert narrow["additionalProperties"] is False and narrow["required"] == ["person_code"]
    anonymous = documents[None]["paths"]
    assert not any("fpr_person" in path for path in anonymous)
    assert "/rest/service_list" in anonymous


def run_schemathesis(node: RunningBridge, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The schemathesis CLI, run in ``folder`` (it keeps its cache in .schemathesis/ of the working directory)."""
    command = [str(Path(sys.executable).with_name("schemathesis")), "run", f"{node.url}/rest/openapi.json",
               "--header", f"X-Road-Client: {DEMO_CONSUMER}", "--max-examples", "20", "--workers", "1",
               "--seed", "13", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=folder)


def test_schemathesis_finds_no_server_error_and_only_conforming_answers(node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """Bounded: 20 examples per operation. Valid requests: every answer conforms to its schema and status list;
    invalid ones (negative mode): never a server error, only documented statuses. A key "changes" is the feed
    by design, so negative data is not held to the lookup's 200 schema."""
    positive = run_schemathesis(node, tmp_path, "--mode", "positive", "--phases", "coverage,fuzzing", "--checks",
                                "not_a_server_error,response_schema_conformance,status_code_conformance")
    assert positive.returncode == 0, positive.stdout[-6000:] + positive.stderr[-2000:]
    negative = run_schemathesis(node, tmp_path, "--mode", "negative", "--phases", "fuzzing", "--checks",
                                "not_a_server_error,status_code_conformance")
    assert negative.returncode == 0, negative.stdout[-6000:] + negative.stderr[-2000:]
    total = 0
    for run in (positive, negative):  # warnings (random keys find nothing, random permission numbers are refused) are fine
        generated, passed = re.search(r"(\d+) generated, (\d+) passed", run.stdout).groups()  # type: ignore[union-attr]
        assert generated == passed
        total += int(generated)
    assert 100 < total < 2000  # bounded, and yet a real run


def test_the_curl_examples_of_docs_rest_run(node, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """docs/rest.md: every shell block (DAGR face, its searches, then X-Road REST) runs as written against a
    development-mode node with the demo data; each block is found by what it calls, not by its position."""
    import os

    guide = (Path(__file__).resolve().parents[2] / "docs" / "rest.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.*?)```", guide, flags=re.S)
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    out: dict[str, str] = {}
    for block in blocks:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.replace("http://127.0.0.1:8080", node.url)],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"{block}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        out[block] = result.stdout

    def of(marker: str) -> str:
        (found,) = [text for block, text in out.items() if marker in block]
        return found

    assert len(blocks) >= 6 and any("schemathesis run" in block for block in blocks)
    searches = of("technical.fuel=diesel")
    assert searches.count('"records":') == 2 and '"fuel":"diesel"' in searches
    examples = of("/rest/current_user_permissions")
    assert '"service_name":"fpr_person"' in examples and '"permission_number"' in examples
    validate(__import__("json").loads((tmp_path / "openapi.json").read_text()))
    refusals = of("/rest/fpr_person/000000-00000")
    assert "access-denied" in refusals and "\n403\n" in refusals and "not-found" in refusals and "\n404\n" in refusals
    # X-Road REST: metaservices, a lookup with its X-Road headers, the service's OpenAPI, refusals
    r1 = of("getOpenAPI?serviceCode=fpr_person")
    assert r1.count('"service_code":"fpr_person"') == 2 and '"endpoint_list"' in r1
    assert "X-Road-Id: demo-r1-1\n" in r1 and "X-Road-Request-Hash: " in r1 and '"first_name"' in r1
    validate(__import__("json").loads((tmp_path / "fpr_person-openapi.json").read_text()))
    r1_refusals = of("/r1/LV/GOV/90000100015/FPR/fpr_person/010101-10000")
    assert "HTTP/1.1 403" in r1_refusals and "X-Road-Error: Server.ServerProxy.AccessDenied\n" in r1_refusals
    assert '"type": "Client.MissingHeaderField"' in r1_refusals and r1_refusals.endswith("\n400\n")
