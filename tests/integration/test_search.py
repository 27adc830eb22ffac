"""Searches over real HTTP on /xroad (zeep), /catalog (zeep) and /rest (issue 11 item 2, issue 13 item 1).

A search walks every page with the right total, by page number and by cursor; a restricted person's
records are left out for a consumer whose permission is no legal obligation, and the total does not
count them, but an obligated one sees them; one use per answer (an exact quota) and none for a refused
search; a data-tracker entry for every person in the answer and none for a person on another page; an
unindexed criterion and a page size above the maximum are refused; a permission that cannot read a
field cannot search by it; the search services are listed, typed in the WSDL and in OpenAPI.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any, Iterator

import pytest
import requests
import zeep
from lxml import etree
from zeep.exceptions import Fault

from tests.access_helpers import registry_for
from tests.conftest import RunningBridge, cli, start_bridge
from tests.soap_helpers import NS_ID, NS_XROAD, XROAD_TNS, parse_fault, post, xroad_headers
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.catalog.search import criterion_element
from viss_bridge.catalog.store import DatasetStore
from viss_bridge.db import make_engine
from viss_bridge.facade.xroad_headers import XRoadId, request_envelope

DATASET = "csdd_vehicle"
FACES = ("xroad", "catalog", "rest")
PLAIN = "LV/GOV/90000000201/SEARCH-CONSENT"      # permission resting on consent
OBLIGED = "LV/GOV/90000000202/SEARCH-OBLIGED"    # permission resting on a legal obligation
NARROW = "LV/GOV/90000000203/SEARCH-NARROW"      # reads make and technical only
QUOTA = "LV/GOV/90000000204/SEARCH-QUOTA"        # 4 uses
TRACKED = "LV/GOV/90000000205/SEARCH-TRACKED"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    bridge = start_bridge(tmp_path_factory.mktemp("search"), workers=2, size=120)
    registry = registry_for(bridge)
    numbers = {}
    for client in (PLAIN, OBLIGED, NARROW, QUOTA, TRACKED):
        registry.add_client(client, client.rsplit("/", 1)[1])
    registry.grant(PLAIN, DATASET, purpose="insurance offer", legal_basis="customer consent")
    registry.grant(TRACKED, DATASET, purpose="insurance offer", legal_basis="customer consent")
    registry.grant(OBLIGED, DATASET, purpose="tax administration", legal_basis="Law on Taxes, s. 15",
                   legal_obligation=True)
    registry.grant(NARROW, DATASET, purpose="statistics", legal_basis="Statistics Law", fields=["make", "technical"])
    numbers[QUOTA] = registry.grant(QUOTA, DATASET, purpose="checks", legal_basis="customer consent", quota=4).number
    registry.engine.dispose()
    bridge.quota_permission = numbers[QUOTA]  # type: ignore[attr-defined]
    yield bridge
    bridge.stop()


@pytest.fixture(scope="module")
def vehicles(node: RunningBridge) -> list[dict[str, Any]]:
    """Every record, read straight from the store: the oracle the answers are checked against."""
    dataset = load_catalog(node.catalog_dir).get(DATASET)
    store = DatasetStore(make_engine(node.database_url))
    found, cursor = [], 0
    while True:
        changes = store.changes(dataset, cursor, 500)
        if not changes:
            break
        found += [c.record for c in changes if c.record is not None]
        cursor = changes[-1].seq
    store.engine.dispose()
    return sorted(found, key=lambda r: r["plate"])


@pytest.fixture(scope="module")
def fuel(vehicles: list[dict[str, Any]]) -> str:
    """The most common fuel: a criterion that matches records on several pages."""
    value, count = Counter(v["technical"]["fuel"] for v in vehicles).most_common(1)[0]
    assert count >= 7
    return value


@pytest.fixture(scope="module")
def clients(node: RunningBridge) -> dict[str, zeep.Client]:
    # NARROW reads some fields: its generated client comes from its own (narrowed) WSDL, as a consumer's would
    return {"xroad": zeep.Client(f"{node.xroad}?wsdl"), "catalog": zeep.Client(f"{node.catalog}?wsdl"),
            "xroad-narrow": zeep.Client(f"{node.xroad}?wsdl&client={NARROW}")}


class Refused(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def search(face: str, node: RunningBridge, clients: dict[str, zeep.Client], client: str, criteria: dict[str, Any],
           page: int | None = None, page_size: int | None = None, cursor: str | None = None) -> dict[str, Any]:
    """One search on one face: {"records": [...plain dicts...], "total", "next_cursor"}; Refused on a fault."""
    try:
        if face == "xroad":
            dataset = load_catalog(node.catalog_dir).get(DATASET)
            headers = xroad_headers(client, dataset, message_id=str(uuid.uuid4()))
            headers["service"]["serviceCode"] = f"{DATASET}Search"
            service = clients["xroad-narrow" if client == NARROW else "xroad"].service
            answer = service.csdd_vehicleSearch(
                **{criterion_element(p): v for p, v in criteria.items()}, page=page, pageSize=page_size,
                cursor=cursor, _soapheaders=headers)
            body = answer.body
            return {"records": [zeep.helpers.serialize_object(r, dict) for r in body.record or []],
                    "total": body.total, "next_cursor": body.nextCursor, "page_size": body.pageSize}
        if face == "catalog":
            answer = clients["catalog"].service.searchRecords(
                dataset=DATASET, criterion=[{"name": p, "value": str(v)} for p, v in criteria.items()], page=page,
                pageSize=page_size, cursor=cursor, _soapheaders={"caller": {"client": client}})
            return {"records": [zeep.helpers.serialize_object(getattr(r, DATASET), dict) for r in answer.record or []],
                    "total": answer.total, "next_cursor": answer.nextCursor, "page_size": answer.pageSize}
    except Fault as fault:
        raise Refused(fault.code, fault.message) from None
    params = {**criteria, **{k: v for k, v in (("page", page), ("page_size", page_size), ("cursor", cursor))
                             if v is not None}}
    response = requests.get(f"{node.url}/rest/{DATASET}", params=params, headers={"X-Road-Client": client}, timeout=30)
    if response.status_code != 200:
        problem = response.json()
        raise Refused(problem["fault_code"], problem["detail"])
    return response.json()


def walk(face: str, node: RunningBridge, clients: dict[str, zeep.Client], client: str, criteria: dict[str, Any],
         by: str, size: int = 3) -> tuple[list[str], set[int]]:
    """Every page of a search: the plates in answer order and the totals the pages said."""
    plates: list[str] = []
    totals: set[int] = set()
    number, cursor = 1, None
    while True:
        answer = search(face, node, clients, client, criteria, page=number if by == "page" else None, page_size=size,
                        cursor=cursor if by == "cursor" else None)
        plates += [r["plate"] for r in answer["records"]]
        totals.add(answer["total"])
        assert len(answer["records"]) <= size
        if answer["next_cursor"] is None:
            assert len(answer["records"]) < size or len(plates) == answer["total"]
            return plates, totals
        assert len(answer["records"]) == size
        number, cursor = number + 1, answer["next_cursor"]


@pytest.mark.parametrize("by", ["page", "cursor"])
@pytest.mark.parametrize("face", FACES)
def test_a_search_walks_every_page_with_the_right_total(node, clients, vehicles, fuel, face, by) -> None:  # type: ignore[no-untyped-def]
    expected = [v["plate"] for v in vehicles if v["technical"]["fuel"] == fuel]
    plates, totals = walk(face, node, clients, OBLIGED, {"technical.fuel": fuel}, by)
    assert plates == expected and totals == {len(expected)}
    # a value inside a list of objects: every vehicle a person owns a share of, the registered keeper or not
    owner = next(o["person_code"] for v in vehicles for o in v["owners"][1:])
    owned = [v["plate"] for v in vehicles if owner in {o["person_code"] for o in v["owners"]}]
    plates, totals = walk(face, node, clients, OBLIGED, {"owners[].person_code": owner}, by, size=1)
    assert plates == owned and totals == {len(owned)} and owned
    # and a typed record, as a lookup answers it
    first = search(face, node, clients, OBLIGED, {"vin": vehicles[0]["vin"]})
    assert first["total"] == 1 and first["records"][0]["plate"] == vehicles[0]["plate"]
    assert first["records"][0]["owners"][0]["person_code"] == vehicles[0]["owners"][0]["person_code"]


@pytest.mark.parametrize("face", FACES)
def test_a_restricted_person_is_left_out_for_a_non_obligated_consumer_only(node, clients, vehicles, fuel,  # type: ignore[no-untyped-def]
                                                                          face) -> None:
    matching = [v for v in vehicles if v["technical"]["fuel"] == fuel]
    holder = matching[len(matching) // 2]["holder_code"]
    cli("access", "restrict", holder, DATASET, "--reason", "asked the register", env=node.env())
    try:
        visible = [v["plate"] for v in matching if v["holder_code"] != holder]
        assert len(visible) < len(matching)
        plates, totals = walk(face, node, clients, PLAIN, {"technical.fuel": fuel}, "page")
        assert plates == visible and totals == {len(visible)}  # the total does not reveal the person either
        plates, totals = walk(face, node, clients, PLAIN, {"technical.fuel": fuel}, "cursor", size=2)
        assert plates == visible and totals == {len(visible)}
        plates, totals = walk(face, node, clients, OBLIGED, {"technical.fuel": fuel}, "page")
        assert plates == [v["plate"] for v in matching] and totals == {len(matching)}
        # searching for the person themself finds nothing for the non-obligated consumer, and says 0
        answer = search(face, node, clients, PLAIN, {"owners[].person_code": holder})
        assert all(r["holder_code"] != holder for r in answer["records"])
        assert answer["total"] == sum(1 for v in vehicles if v["holder_code"] != holder
                                      and holder in {o["person_code"] for o in v["owners"]})
    finally:
        cli("access", "lift", holder, DATASET, env=node.env())


def used(node: RunningBridge) -> int:
    registry = registry_for(node)
    try:
        permission = registry.permission(node.quota_permission)  # type: ignore[attr-defined]
        assert permission is not None
        return permission.used
    finally:
        registry.engine.dispose()


def test_one_use_per_search_answer_and_none_for_a_refused_one(node, clients, fuel) -> None:  # type: ignore[no-untyped-def]
    assert used(node) == 0
    for count, face in enumerate(FACES, start=1):
        answer = search(face, node, clients, QUOTA, {"technical.fuel": fuel}, page_size=2)
        assert len(answer["records"]) == 2 and used(node) == count  # one use for a page, however many records
        for criteria, size in (({}, 2), ({"technical.fuel": fuel}, 101)) + ((({"make": "Volvo"}, 2),)
                                                                           if face != "xroad" else ()):
            with pytest.raises(Refused) as refused:
                search(face, node, clients, QUOTA, criteria, page_size=size)
            assert refused.value.code == "Client.InvalidRequest"
        assert used(node) == count  # a refused search spends nothing
    dataset = load_catalog(node.catalog_dir).get(DATASET)
    fault = parse_fault(post(node.xroad, search_envelope(dataset, QUOTA, {"make": "Volvo"})))
    assert fault.code == "Client.InvalidRequest" and used(node) == 3
    nothing = search("rest", node, clients, QUOTA, {"vin": "NO-SUCH-VIN"})
    assert nothing["records"] == [] and nothing["total"] == 0 and used(node) == 4  # an empty answer is an answer
    with pytest.raises(Refused) as exhausted:
        search("xroad", node, clients, QUOTA, {"technical.fuel": fuel})
    assert exhausted.value.code == "Server.ServerProxy.AccessDenied" and used(node) == 4


def usage_by(node: RunningBridge, person: str, client: str) -> list[dict[str, Any]]:
    out = json.loads(cli("tracker", person, "--json", env=node.env()).stdout)
    return [u for u in out["usage"] if u["client"] == client and u["dataset"] == DATASET]


def test_a_tracker_entry_for_every_person_in_the_answer_only(node, clients, vehicles, fuel) -> None:  # type: ignore[no-untyped-def]
    matching = [v for v in vehicles if v["technical"]["fuel"] == fuel]
    answer = search("xroad", node, clients, TRACKED, {"technical.fuel": fuel}, page_size=4)
    in_answer = {r["holder_code"] for r in answer["records"]}
    later = {v["holder_code"] for v in matching[4:]} - in_answer
    assert len(in_answer) >= 2 and later
    for person in in_answer:
        entries = usage_by(node, person, TRACKED)
        assert len(entries) == 1 and entries[0]["purpose"] == "insurance offer", person
    for person in later:
        assert usage_by(node, person, TRACKED) == [], person


@pytest.mark.parametrize("face", FACES)
def test_unindexed_criteria_and_oversized_pages_are_refused_naming_them(node, clients, fuel, face) -> None:  # type: ignore[no-untyped-def]
    cases = [({"make": "Volvo"}, {}, "'make' is not indexed"),
             ({"technical.fuel": fuel}, {"page_size": 101}, "100"),
             ({"technical.fuel": fuel}, {"page": 0}, "page"),
             ({}, {}, "at least one criterion"),
             ({"technical.fuel": fuel}, {"page": 1, "cursor": "QUIx"}, "not both")]
    if face == "xroad":  # zeep sends only the WSDL's elements: an unknown one is tested raw below
        cases = [c for c in cases if "make" not in c[0]]
    for criteria, paging, words in cases:
        with pytest.raises(Refused) as refused:
            search(face, node, clients, OBLIGED, criteria, **paging)
        assert refused.value.code == "Client.InvalidRequest" and words in refused.value.message, (criteria, paging)


def search_envelope(dataset: Any, client: str, children: dict[str, str]) -> bytes:
    parts = dataset.owner_parts
    service = XRoadId("SERVICE", parts[0], parts[1], parts[2], parts[3], f"{DATASET}Search", dataset.version)
    body = etree.Element(f"{{{XROAD_TNS}}}{DATASET}Search", nsmap={"ds": XROAD_TNS})
    for name, value in children.items():
        etree.SubElement(body, f"{{{XROAD_TNS}}}{name}").text = value
    return request_envelope(client, service, body, str(uuid.uuid4()))


def test_xroad_refuses_an_element_that_is_no_criterion_and_an_unreadable_criterion(node) -> None:  # type: ignore[no-untyped-def]
    dataset = load_catalog(node.catalog_dir).get(DATASET)
    fault = parse_fault(post(node.xroad, search_envelope(dataset, OBLIGED, {"make": "Volvo"})))
    assert fault.code == "Client.InvalidRequest" and "'make' is no criterion" in fault.string
    fault = parse_fault(post(node.xroad, search_envelope(dataset, NARROW, {"owners_person_code": "010101-10001"})))
    assert fault.code == "Server.ServerProxy.AccessDenied" and "'owners[].person_code'" in fault.string


@pytest.mark.parametrize("face", FACES)
def test_a_permission_that_cannot_read_a_field_cannot_search_by_it(node, clients, vehicles, fuel, face) -> None:  # type: ignore[no-untyped-def]
    person = vehicles[0]["owners"][0]["person_code"]
    if face != "xroad":  # NARROW's WSDL has no such criterion element; sent anyway, see the raw test above
        with pytest.raises(Refused) as refused:
            search(face, node, clients, NARROW, {"owners[].person_code": person})
        assert refused.value.code == "Server.ServerProxy.AccessDenied" and "'owners'" in refused.value.message
    answer = search(face, node, clients, NARROW, {"technical.fuel": fuel})
    assert answer["total"] == sum(1 for v in vehicles if v["technical"]["fuel"] == fuel)
    for record in answer["records"]:
        assert {k for k, v in record.items() if v not in (None, [])} <= {"plate", "make", "technical"}


def test_search_services_are_listed_typed_and_narrowed(node) -> None:  # type: ignore[no-untyped-def]
    dataset = load_catalog(node.catalog_dir).get(DATASET)
    parts = dataset.owner_parts
    service = XRoadId("SERVICE", parts[0], parts[1], parts[2], parts[3], "allowedMethods")
    answer = post(node.xroad, request_envelope(NARROW, service, etree.Element(f"{{{NS_XROAD}}}allowedMethods"),
                                               str(uuid.uuid4())))
    listed = etree.fromstring(answer.content).find(f".//{{{NS_XROAD}}}allowedMethodsResponse")
    codes = [s.findtext(f"{{{NS_ID}}}serviceCode") for s in listed.findall(f"{{{NS_XROAD}}}service")]
    assert codes == [DATASET, f"{DATASET}Search"]
    # the WSDL types every criterion as its field; NARROW's WSDL offers only what it may search by
    full = etree.fromstring(requests.get(f"{node.xroad}?wsdl&service={DATASET}Search", timeout=30).content)
    xsd = "{http://www.w3.org/2001/XMLSchema}"
    request_type = next(t for t in full.iter(f"{xsd}complexType") if t.get("name") == f"{DATASET}Search")
    elements = {e.get("name"): e.get("type") for e in request_type.iter(f"{xsd}element")}
    assert elements["technical_fuel"].endswith(":string") and elements["pageSize"].endswith(":integer")
    assert elements["owners_person_code"] == "tns:csdd_vehicleSearch_owners_person_codeType"  # string, max_length 12
    assert set(elements) == {"vin", "owners_person_code", "technical_fuel", "page", "pageSize", "cursor"}
    narrow = etree.fromstring(requests.get(f"{node.xroad}?wsdl", params={"client": NARROW}, timeout=30,
                                           headers={"X-Road-Client": NARROW}).content)
    request_type = next(t for t in narrow.iter(f"{xsd}complexType") if t.get("name") == f"{DATASET}Search")
    assert {e.get("name") for e in request_type.iter(f"{xsd}element")} == {"technical_fuel", "page", "pageSize",
                                                                            "cursor"}
    # OpenAPI: the index parameters the caller may search by, on the dataset's path
    def parameters(client: str) -> set[str]:
        document = requests.get(f"{node.url}/rest/openapi.json", headers={"X-Road-Client": client}, timeout=30).json()
        return {p["name"] for p in document["paths"][f"/rest/{DATASET}"]["get"]["parameters"]}
    assert {"owners[].person_code", "technical.fuel", "vin", "page", "page_size", "cursor"} <= parameters(PLAIN)
    assert "technical.fuel" in parameters(NARROW) and not {"owners[].person_code", "vin"} & parameters(NARROW)
