"""GET /dcat over real HTTP: a DCAT-AP 3.0.1 catalogue of what the bridge publishes.

Harvesters (data.gov.lv, data.europa.eu) read it without knowing the bridge, so what
is checked is what they rely on: it parses as Turtle and as JSON-LD, every published
dataset is there with Latvian and English titles and its owner as publisher, every
endpoint URL is this bridge's and answers, it conforms to the official SHACL shapes
(copied into tests/fixtures/dcat-ap-3.0.1 with their licence notice), and a manifest
that is not published is not listed.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
from pyshacl import validate
from rdflib import RDF, Graph, Literal, Namespace, URIRef
from rdflib.compare import isomorphic
from rdflib.namespace import DCTERMS, FOAF

from tests.conftest import RunningBridge, cli, start_bridge

SHAPES = Path(__file__).parents[1] / "fixtures" / "dcat-ap-3.0.1"
SH = Namespace("http://www.w3.org/ns/shacl#")
DCAT = Namespace("http://www.w3.org/ns/dcat#")  # open namespace: pytest probes module globals
THEME = "http://publications.europa.eu/resource/authority/data-theme/"
ACCESS = "http://publications.europa.eu/resource/authority/access-right/"

BROKEN = """\
dataset: broken_register
title: {lv: "Salauzts", en: "Broken"}
owner: LV/GOV/90000000001/BROKEN
key: [code]
themes: [GOVE, NOPE]
fields:
  - {name: code, type: string}
"""


@pytest.fixture(scope="module")
def dcat_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """A demo bridge whose catalog folder also holds a broken manifest and a draft that is not a manifest."""
    running = start_bridge(tmp_path_factory.mktemp("dcat"), workers=1, size=20)
    try:
        (running.catalog_dir / "broken_register.yaml").write_text(BROKEN, encoding="utf-8")
        draft = (running.catalog_dir / "ur_company.yaml").read_text(encoding="utf-8").replace(
            "dataset: ur_company", "dataset: draft_register")
        (running.catalog_dir / "draft_register.yaml.draft").write_text(draft, encoding="utf-8")
        deadline = time.monotonic() + 30
        while requests.get(f"{running.url}/health", timeout=5).json()["catalog"]["status"] != "manifests-refused":
            assert time.monotonic() < deadline, "the bridge never noticed the broken manifest"
            time.sleep(0.2)
        yield running
    finally:
        running.stop()


def fetch(bridge: RunningBridge, accept: str | None = None) -> requests.Response:
    return requests.get(f"{bridge.url}/dcat", headers={"Accept": accept} if accept else {}, timeout=30)


@pytest.fixture(scope="module")
def turtle(dcat_bridge: RunningBridge) -> Graph:
    response = fetch(dcat_bridge)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/turtle")
    return Graph().parse(data=response.text, format="turtle")


def published(bridge: RunningBridge) -> list[str]:
    return requests.get(f"{bridge.url}/", timeout=10).json()["datasets"]


def test_turtle_by_default_and_json_ld_on_accept_describe_the_same_graph(dcat_bridge, turtle) -> None:  # type: ignore[no-untyped-def]
    response = fetch(dcat_bridge, "application/ld+json")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("application/ld+json")
    assert "Accept" in response.headers["Vary"]
    json.loads(response.text)  # plain JSON for a JSON client
    assert isomorphic(Graph().parse(data=response.text, format="json-ld"), turtle)
    preferred = fetch(dcat_bridge, "text/turtle;q=0.5, application/ld+json")
    assert preferred.headers["Content-Type"].startswith("application/ld+json")
    assert fetch(dcat_bridge, "*/*").headers["Content-Type"].startswith("text/turtle")


def test_an_accept_nothing_matches_gets_406_with_what_is_offered(dcat_bridge) -> None:  # type: ignore[no-untyped-def]
    response = fetch(dcat_bridge, "text/html")
    assert response.status_code == 406
    assert "text/turtle" in response.text and "application/ld+json" in response.text
    assert fetch(dcat_bridge, "text/turtle;q=0, application/ld+json;q=0").status_code == 406


def test_every_published_dataset_with_lv_and_en_titles_publisher_themes_and_keywords(dcat_bridge, turtle) -> None:  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.catalog import load_catalog_keeping

    catalog, _ = load_catalog_keeping(None, dcat_bridge.catalog_dir)
    listed = {str(turtle.value(d, DCTERMS.identifier)): d for d in turtle.subjects(RDF.type, DCAT.Dataset)}
    assert sorted(listed) == sorted(published(dcat_bridge)) == sorted(d.dataset for d in catalog)
    root = next(turtle.subjects(RDF.type, DCAT.Catalog))
    assert set(turtle.objects(root, DCAT.dataset)) == set(listed.values())
    for dataset in catalog:
        node = listed[dataset.dataset]
        titles = set(turtle.objects(node, DCTERMS.title))
        assert {Literal(dataset.title.lv, lang="lv"), Literal(dataset.title.en, lang="en")} == titles
        publisher = turtle.value(node, DCTERMS.publisher)
        assert (publisher, RDF.type, FOAF.Agent) in turtle
        assert str(turtle.value(publisher, FOAF.name)) == (dataset.owner_name or dataset.owner)
        assert str(turtle.value(publisher, DCTERMS.identifier)) == dataset.owner
    person = listed["fpr_person"]
    assert set(turtle.objects(person, DCAT.theme)) == {URIRef(THEME + "SOCI"), URIRef(THEME + "GOVE")}
    keywords = set(turtle.objects(person, DCAT.keyword))
    assert Literal("personas kods", lang="lv") in keywords and Literal("personal code", lang="en") in keywords
    assert turtle.value(person, DCTERMS.accessRights) == URIRef(ACCESS + "RESTRICTED")
    assert turtle.value(listed["vzd_address"], DCTERMS.accessRights) == URIRef(ACCESS + "PUBLIC")  # open data
    assert turtle.value(listed["ur_company"], DCTERMS.accessRights) == URIRef(ACCESS + "PUBLIC")


def test_a_broken_manifest_and_a_draft_are_not_listed(dcat_bridge, turtle) -> None:  # type: ignore[no-untyped-def]
    identifiers = {str(turtle.value(d, DCTERMS.identifier)) for d in turtle.subjects(RDF.type, DCAT.Dataset)}
    assert "broken_register" not in identifiers and "draft_register" not in identifiers
    assert "broken_register" not in fetch(dcat_bridge).text


def test_every_endpoint_url_is_this_bridge_and_answers_its_wsdl(dcat_bridge, turtle) -> None:  # type: ignore[no-untyped-def]
    services = list(turtle.subjects(RDF.type, DCAT.DataService))
    endpoints = {str(turtle.value(s, DCAT.endpointURL)) for s in services}
    base = dcat_bridge.url
    assert {f"{base}/xroad", f"{base}/catalog", f"{base}/viss", f"{base}/legacy/fpr", f"{base}/legacy/var",
            f"{base}/legacy/csdd",
            f"{base}/rest", f"{base}/r1"} == endpoints
    for service in services:
        endpoint = str(turtle.value(service, DCAT.endpointURL))
        description = str(turtle.value(service, DCAT.endpointDescription))
        if endpoint == f"{base}/r1":  # X-Road REST: each service's OpenAPI comes from getOpenAPI, no one document
            assert turtle.value(service, DCAT.endpointDescription) is None
            assert URIRef("https://github.com/nordic-institute/X-Road/blob/develop/doc/Protocols/"
                          "pr-rest_x-road_message_protocol_for_rest.md") in set(turtle.objects(service, DCTERMS.conformsTo))
            answer = requests.get(f"{endpoint}/LV/GOV/90000100015/FPR/listMethods", timeout=30,
                                  headers={"X-Road-Client": "LV/GOV/90000069281/VID-EDS"})
            assert answer.status_code == 200 and "fpr_person" in answer.text, answer.text
        elif endpoint == f"{base}/rest":  # described by its OpenAPI document, not a WSDL
            assert description == f"{base}/rest/openapi.json"
            answer = requests.get(description, timeout=30)
            assert answer.status_code == 200 and answer.json()["openapi"].startswith("3.1"), endpoint
        else:
            wsdl = requests.get(f"{endpoint}?wsdl", timeout=30)
            assert wsdl.status_code == 200 and b"definitions" in wsdl.content, endpoint
            assert description == f"{endpoint}?wsdl"
        served = set(turtle.objects(service, DCAT.servesDataset))
        assert served and all((d, RDF.type, DCAT.Dataset) in turtle for d in served)
        assert turtle.value(service, DCTERMS.conformsTo) is not None
    xroad = next(s for s in services if str(turtle.value(s, DCAT.endpointURL)) == f"{base}/xroad")
    assert URIRef("https://github.com/nordic-institute/X-Road/blob/develop/doc/Protocols/"
                  "pr-mess_x-road_message_protocol.md") in set(turtle.objects(xroad, DCTERMS.conformsTo))
    # a legacy contract lists exactly the datasets it answers; every distribution points at a listed service
    fpr = next(s for s in services if str(turtle.value(s, DCAT.endpointURL)) == f"{base}/legacy/fpr")
    assert {str(turtle.value(d, DCTERMS.identifier)) for d in turtle.objects(fpr, DCAT.servesDataset)} == {"fpr_person"}
    for distribution in turtle.subjects(RDF.type, DCAT.Distribution):
        service = turtle.value(distribution, DCAT.accessService)
        assert service in services
        assert turtle.value(distribution, DCAT.accessURL) == turtle.value(service, DCAT.endpointURL)


def _shapes(*names: str) -> Graph:
    graph = Graph()
    for name in names:
        graph.parse(SHAPES / name, format="turtle")
    return graph


def _results(report: Graph, severity: URIRef) -> list[str]:
    """The report's own results of a severity (not the details nested under a warning)."""
    top = {r for validation in report.subjects(RDF.type, SH.ValidationReport) for r in report.objects(validation, SH.result)}
    return [f"{report.value(r, SH.focusNode)} {report.value(r, SH.resultPath)}: {report.value(r, SH.resultMessage)}"
            for r in top if report.value(r, SH.resultSeverity) == severity]


def test_conforms_to_the_dcat_ap_3_0_1_shapes(turtle) -> None:  # type: ignore[no-untyped-def]
    # Mandatory properties and class ranges: no result at all.
    conforms, _, text = validate(turtle, shacl_graph=_shapes("shapes.ttl", "range.ttl"), inference="none")
    assert conforms, text
    # Controlled vocabularies and recommendations: warnings only (no EU corporate-body IRI exists for the
    # owners, no contact points are configured); not one violation.
    conforms, report, text = validate(turtle, shacl_graph=_shapes("mdr-vocabularies.shape.ttl", "shapes_recommended.ttl"),
                                      inference="none", allow_warnings=True)
    assert conforms and not _results(report, SH.Violation), text


def test_the_shapes_catch_a_catalogue_that_misses_a_mandatory_property(turtle) -> None:  # type: ignore[no-untyped-def]
    """The check above proves something only if pyshacl reads the copied shapes: drop the titles, it must fail."""
    broken = Graph()
    for triple in turtle:
        if not (triple[1] == DCTERMS.title and (triple[0], RDF.type, DCAT.Dataset) in turtle):
            broken.add(triple)
    conforms, report, text = validate(broken, shacl_graph=_shapes("shapes.ttl", "range.ttl"), inference="none")
    assert not conforms and len(_results(report, SH.Violation)) == len(published_datasets(turtle)), text


def published_datasets(graph: Graph) -> list[URIRef]:
    return list(graph.subjects(RDF.type, DCAT.Dataset))


def test_the_cli_prints_the_graph_the_endpoint_serves(dcat_bridge, turtle) -> None:  # type: ignore[no-untyped-def]
    result = cli("catalog", "dcat", "--base-url", dcat_bridge.url, env=dcat_bridge.env())
    assert isomorphic(Graph().parse(data=result.stdout, format="turtle"), turtle)
    assert "broken_register.yaml:5" in result.stderr  # the refused manifest, with its line
    as_json = cli("catalog", "dcat", "--format", "json-ld", "--base-url", dcat_bridge.url, env=dcat_bridge.env())
    assert isomorphic(Graph().parse(data=as_json.stdout, format="json-ld"), turtle)
