"""The DCAT-AP builder and the manifest keys it reads (themes, keywords), without a server."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import RDF, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS

from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.catalog.dcat import Faces, build_catalog, negotiate
from viss_bridge.catalog.manifest import ManifestError, load_manifest

DCAT = Namespace("http://www.w3.org/ns/dcat#")
ACCESS = "http://publications.europa.eu/resource/authority/access-right/"

MANIFEST = """\
dataset: sample
title: {lv: "Paraugs", en: "Sample"}
owner: LV/GOV/90000000001/SAMPLE
key: [code]
access: private
themes:
  - GOVE
  - GOVX
keywords: {lv: [paraugs], en: [sample]}
fields:
  - {name: code, type: string}
"""


def write(folder: Path, text: str, name: str = "sample") -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_bad_theme_code_names_the_file_the_line_and_the_allowed_codes(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(write(tmp_path, MANIFEST))
    error = caught.value
    assert error.file.endswith("sample.yaml") and error.line == 8 and error.field == "themes.1"
    assert "sample.yaml:8" in str(error) and "'GOVX' is not an EU data-theme code" in str(error) and "SOCI" in str(error)


def test_keywords_take_lv_and_en_only(tmp_path: Path) -> None:
    with pytest.raises(ManifestError) as caught:
        load_manifest(write(tmp_path, MANIFEST.replace("  - GOVX\n", "").replace("en: [sample]", "de: [Probe]")))
    assert caught.value.line == 8 and caught.value.field == "keywords.de" and "unknown key" in str(caught.value)


def test_themes_and_keywords_are_optional(tmp_path: Path) -> None:
    text = "".join(line for line in MANIFEST.splitlines(keepends=True)
                   if not line.startswith(("themes", "  - GOV", "keywords")))
    dataset = load_manifest(write(tmp_path, text))
    assert dataset.themes == () and dataset.keywords is None


def test_private_maps_to_non_public_and_a_missing_description_is_still_given(tmp_path: Path) -> None:
    write(tmp_path, MANIFEST.replace("  - GOVX\n", ""))
    graph = build_catalog(load_catalog(tmp_path), Faces("https://bridge.example.lv/", "LV/GOV/90000000000/NODE"))
    dataset = next(graph.subjects(RDF.type, DCAT.Dataset))
    assert graph.value(dataset, DCTERMS.accessRights) == URIRef(ACCESS + "NON_PUBLIC")
    assert {d.language for d in graph.objects(dataset, DCTERMS.description)} == {"lv", "en"}
    assert set(graph.objects(dataset, DCAT.keyword)) == {Literal("paraugs", lang="lv"), Literal("sample", lang="en")}
    endpoints = {str(graph.value(s, DCAT.endpointURL)) for s in graph.subjects(RDF.type, DCAT.DataService)}
    assert endpoints == {"https://bridge.example.lv/xroad", "https://bridge.example.lv/catalog"}  # no VISS URN, no contract


def test_rest_is_listed_with_its_openapi_only_where_it_is_mounted(tmp_path: Path) -> None:
    write(tmp_path, MANIFEST.replace("  - GOVX\n", ""))
    graph = build_catalog(load_catalog(tmp_path), Faces("https://bridge.example.lv", "LV/GOV/1/NODE", rest=True))
    rest = next(s for s in graph.subjects(RDF.type, DCAT.DataService)
                if str(graph.value(s, DCAT.endpointURL)) == "https://bridge.example.lv/rest")
    assert str(graph.value(rest, DCAT.endpointDescription)) == "https://bridge.example.lv/rest/openapi.json"


@pytest.mark.parametrize("accept, chosen", [
    (None, "turtle"), ("", "turtle"), ("*/*", "turtle"), ("text/turtle", "turtle"),
    ("application/ld+json", "json-ld"), ("application/*", "json-ld"),
    ("text/turtle;q=0.4, application/ld+json;q=0.8", "json-ld"), ("application/ld+json;q=0.5, */*", "turtle"),
    ("text/turtle;q=0, */*", "json-ld"), ("text/html", None), ("application/json", None),
    ("*/*;q=0", None),
])
def test_accept_negotiation(accept: str | None, chosen: str | None) -> None:
    assert negotiate(accept) == chosen
