"""The platform as a source, in-process: the manifest's source, JSON -> record, the platform's answers in the
bridge's words, the logged request, and drafting manifests from an OpenAPI document (no sockets)."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.catalog.manifest import Dataset, ManifestError, parse_manifest
from viss_bridge.catalog.platform_source import PlatformSource
from viss_bridge.catalog.values import ValueProblem, record_to_python
from viss_bridge.demo.world import generate_world
from viss_bridge.facade.openapi import build_openapi
from viss_bridge.facade.rest_json import json_record
from viss_bridge.upstream import errors
from viss_bridge.upstream.errors import UpstreamError
from viss_bridge.upstream.platform import (_NOT_FOUND, PlatformClient, PlatformConnection, record_from_json,
                                           request_bytes)
from viss_bridge.upstream.platform_import import draft_all, draft_manifest
from viss_bridge.upstream.resilience import CallGuard

DEMO = Path(__file__).resolve().parents[2] / "viss_bridge" / "demo" / "catalog"


@pytest.fixture(scope="module")
def catalog():  # type: ignore[no-untyped-def]
    return load_catalog(DEMO)


@pytest.fixture(scope="module")
def world() -> dict[str, list[dict[str, Any]]]:
    return generate_world(size=30)


def _wire(dataset: Dataset, record: dict[str, Any]) -> Any:
    """A record as the platform's REST face sends it, read back as the platform client reads it."""
    body = json.dumps(json_record(dataset, record_to_python(dataset.fields, record))).encode()
    return json.loads(body, parse_float=Decimal)


@pytest.mark.parametrize("name", ["csdd_vehicle", "ur_company", "fpr_person", "vsaa_social_insurance"])
def test_a_record_from_the_platform_equals_the_record_in_the_store(catalog, world, name) -> None:  # type: ignore[no-untyped-def]
    dataset = catalog.get(name)
    for record in world[name][:20]:
        stored = record_to_python(dataset.fields, record)  # what DatasetStore.get returns
        assert record_from_json(dataset, _wire(dataset, record)) == stored


def test_decimals_stay_exact_and_nested_values_are_typed(catalog, world) -> None:  # type: ignore[no-untyped-def]
    dataset = catalog.get("csdd_vehicle")
    record = next(r for r in world["csdd_vehicle"] if r["owners"] and r["previous_plates"])
    wire = _wire(dataset, record)
    wire["technical"]["mass"] = "1385.10"
    back = record_from_json(dataset, wire)
    mass = back["technical"]["mass"]
    assert isinstance(mass, Decimal) and str(mass) == "1385.10"  # the trailing zero is kept
    assert isinstance(back["first_registered"], dt.date)
    assert isinstance(back["owners"][0]["share"], Decimal) and isinstance(back["owners"][0]["from"], dt.date)
    assert back["previous_plates"] == record["previous_plates"]
    # a platform that sends a JSON number for a decimal: parsed as Decimal, no float on the way
    client = PlatformClient(PlatformSource(kind="platform", url="https://platform.test/rest"), PlatformConnection())
    number = client._classify(200, b'{"plate": "AB1", "technical": {"mass": 1385.10, "fuel": "diesel"}}', "x")
    assert str(record_from_json(dataset, number)["technical"]["mass"]) == "1385.10"


def test_a_record_that_does_not_fit_the_manifest_is_refused_with_its_path(catalog, world) -> None:  # type: ignore[no-untyped-def]
    dataset = catalog.get("csdd_vehicle")
    wire = _wire(dataset, world["csdd_vehicle"][0])
    wire["owners"][0]["from"] = "yesterday"
    with pytest.raises(ValueProblem, match=r"owners\[0\]\.from"):
        record_from_json(dataset, wire)
    wire = _wire(dataset, world["csdd_vehicle"][0])
    wire["colour"] = "red"
    with pytest.raises(ValueProblem, match="unknown field"):
        record_from_json(dataset, wire)


@pytest.mark.parametrize("status,body,cause,retry", [
    (404, {"type": "urn:viss-bridge:problem:unknown-service"}, errors.PROVIDER_CONFIG, False),
    (403, {"type": "urn:viss-bridge:problem:access-denied", "detail": "no permission"},
     errors.PLATFORM_ACCESS_DENIED, False),
    (401, {}, errors.PLATFORM_ACCESS_DENIED, False),
    (400, {"type": "urn:viss-bridge:problem:permission-required"}, errors.PLATFORM_ACCESS_DENIED, False),
    (400, {"type": "urn:viss-bridge:problem:invalid-request", "fault_code": "Client.InvalidRequest"},
     errors.PROVIDER_FAULT, False),
    (429, {}, errors.PROVIDER_BUSY, False),
    (500, {"fault_code": "Server.ServerProxy.ServiceFailed.InternalError"}, errors.PROVIDER_FAULT, False),
    (502, {}, errors.PROVIDER_UNAVAILABLE, True),
    (503, {"type": "urn:viss-bridge:problem:logging-failed"}, errors.PROVIDER_UNAVAILABLE, True),
    (504, {}, errors.PROVIDER_TIMEOUT, False),
    (302, {}, errors.INVALID_RESPONSE, False),
])
def test_the_platforms_answers_in_the_bridges_words(status, body, cause, retry) -> None:  # type: ignore[no-untyped-def]
    client = PlatformClient(PlatformSource(kind="platform", url="https://platform.test/rest"), PlatformConnection())
    outcome = client._classify(status, json.dumps(body).encode(), "csdd_vehicle")
    assert isinstance(outcome, UpstreamError) and outcome.cause == cause
    assert getattr(outcome, "retryable", False) is retry
    if status == 400 and cause == errors.PROVIDER_FAULT:
        assert outcome.is_client_side  # our request was wrong: says nothing of the platform's health


def test_not_found_and_non_json_answers() -> None:
    client = PlatformClient(PlatformSource(kind="platform", url="https://platform.test/rest"), PlatformConnection())
    assert client._classify(404, b'{"type": "urn:viss-bridge:problem:not-found"}', "x") is _NOT_FOUND
    assert client._classify(200, b"<html/>", "x").cause == errors.INVALID_RESPONSE
    assert client._classify(200, b"[1, 2]", "x").cause == errors.INVALID_RESPONSE


def test_the_logged_request_redacts_the_token_and_carries_the_permission() -> None:
    import requests

    client = PlatformClient(PlatformSource(kind="platform", url="https://platform.test/rest"),
                            PlatformConnection(token="s3cret", permission="P-1"))
    prepared = client.session.prepare_request(requests.Request(
        "GET", "https://platform.test/rest/ur_company/40003000001", headers={"X-DAGR-Permission": "P-1"}))
    logged = request_bytes(prepared)
    assert logged.startswith(b"GET /rest/ur_company/40003000001 HTTP/1.1\r\nHost: platform.test\r\n")
    assert b"Authorization: [redacted]" in logged and b"s3cret" not in logged
    assert b"X-DAGR-Permission: P-1\r\n" in logged
    assert client.session.verify is True  # the system's CAs by default, never unverified


def test_a_refusing_platform_does_not_open_the_breaker_but_failures_do() -> None:
    guard = CallGuard("p", failures=2, reset_after=60, max_concurrent=2, attempts=1, backoff=0,
                      connect_timeout=1, operation_timeout=1)
    for _ in range(3):
        with pytest.raises(UpstreamError):
            guard.run("x", lambda n: UpstreamError(errors.PLATFORM_ACCESS_DENIED, "p", "403"))
    assert guard.breaker.state == "closed"
    for _ in range(2):
        with pytest.raises(UpstreamError):
            guard.run("x", lambda n: UpstreamError(errors.PROVIDER_UNAVAILABLE, "p", "down"))
    with pytest.raises(UpstreamError, match="circuit breaker is open"):
        guard.run("x", lambda n: pytest.fail("called with the breaker open"))


# -- manifests ------------------------------------------------------------------------------------

def _manifest(source: str) -> str:
    text = (DEMO / "ur_company.yaml").read_text()
    head = text.split("\nsource:")[0].replace("dataset: ur_company", "dataset: platform_company")
    return head + "\nsource:\n" + source


def test_a_platform_source_validates_with_file_line_and_field() -> None:
    dataset = parse_manifest(_manifest("  kind: platform\n  url: https://p.test/rest\n  dataset: ur_company\n"
                                       "  permission: P-2026-1\n  mode: replicated\n"), "platform_company.yaml")
    assert isinstance(dataset.source, PlatformSource) and dataset.source.remote_name("x") == "ur_company"
    assert dataset.source.provider_name == "platform-p.test"
    with pytest.raises(ManifestError, match=r"platform_company.yaml:\d+: field 'source.url'"):
        parse_manifest(_manifest("  kind: platform\n  url: ftp://p.test\n"), "platform_company.yaml")
    with pytest.raises(ManifestError, match=r"field 'source.permision': unknown key"):
        parse_manifest(_manifest("  kind: platform\n  url: https://p.test/rest\n  permision: '1'\n"),
                       "platform_company.yaml")
    with pytest.raises(ManifestError, match=r"field 'source.mode'"):
        parse_manifest(_manifest("  kind: platform\n  url: https://p.test/rest\n  mode: cached\n"),
                       "platform_company.yaml")
    with pytest.raises(ManifestError, match=r"'kind' must be store, legacy_soap or platform"):
        parse_manifest(_manifest("  kind: platfrom\n"), "platform_company.yaml")


def _service(dataset: Dataset) -> dict[str, Any]:
    """The dataset's entry as the REST face's service_list gives it."""
    entry = {"service_name": dataset.dataset, "version": dataset.version,
             "title": {"lv": dataset.title.lv, "en": dataset.title.en}, "owner": dataset.owner,
             "access": dataset.access.value, "key": list(dataset.key), "allowed": True}
    if dataset.subject:
        entry["subject"] = dataset.subject
    return entry


def _shape(fields: Any) -> Any:
    return [(f.name, f.type, f.items, f.enum, f.max_length, f.nillable, f.description,
             _shape(f.fields) if f.fields else None) for f in fields]


def test_drafts_from_the_openapi_document_type_every_field_back(catalog, tmp_path) -> None:  # type: ignore[no-untyped-def]
    datasets = list(catalog)
    openapi = build_openapi(datasets, "https://p.test", "LV/GOV/1/X")
    result = draft_all({"services": [_service(d) for d in datasets]}, openapi, None, "https://p.test/rest",
                       prefix="p_")
    assert sorted(d.remote for d in result.drafts) == sorted(d.dataset for d in datasets)
    for draft in result.drafts:
        path = tmp_path / f"{draft.name}.yaml"
        loaded = parse_manifest(draft.text, path)  # loads as written
        original = catalog.get(draft.remote)
        assert _shape(loaded.fields) == _shape(original.fields), draft.remote
        assert loaded.key == original.key and loaded.subject == original.subject
        assert isinstance(loaded.source, PlatformSource) and loaded.source.dataset == draft.remote
        assert "TODO(decide)" in draft.text and not draft.notes


def test_drafts_without_openapi_with_odd_names_and_with_several_permissions(catalog, tmp_path) -> None:  # type: ignore[no-untyped-def]
    dataset = catalog.get("ur_company")
    bare = draft_manifest(_service(dataset), None, "https://p.test/rest", prefix="p_")
    assert [f.name for f in parse_manifest(bare.text, tmp_path / "p_ur_company.yaml").fields] == ["reg_number"]
    assert any("only the key" in n for n in bare.notes)
    openapi = build_openapi([dataset], "https://p.test", None)
    schema = openapi["components"]["schemas"]["ur_company_record"]
    schema["properties"]["legalName"] = {"type": "string"}  # not a manifest field name
    held = {"permissions": [{"service_name": "ur_company", "permission_number": n, "status": "active"}
                            for n in ("P-1", "P-2")]}
    result = draft_all({"services": [_service(dataset), {**_service(catalog.get("fpr_person")), "allowed": False}]},
                       openapi, held, "https://p.test/rest")
    assert [d.remote for d in result.drafts] == ["ur_company"]
    assert result.skipped == ["fpr_person: this connection may not call it (request access on the platform)"]
    draft = result.drafts[0]
    loaded = parse_manifest(draft.text, tmp_path / "ur_company.yaml")
    assert "legalName" in " ".join(draft.notes) and "legal_name" not in [f.name for f in loaded.fields]
    assert isinstance(loaded.source, PlatformSource) and loaded.source.permission is None
    assert "several permissions for ur_company (P-1, P-2)" in draft.text
    # --permission picks the dataset(s) it is for, and reads under it
    only = draft_all({"services": [_service(dataset)]}, openapi, held, "https://p.test/rest", permission="P-2")
    assert yaml.safe_load(only.drafts[0].text)["source"]["permission"] == "P-2"


def test_transport_failures_in_the_bridges_words() -> None:
    import requests

    client = PlatformClient(PlatformSource(kind="platform", url="https://platform.test/rest"),
                            PlatformConnection(ca="/etc/platform-ca.pem", cert="c.pem", key="k.pem"))
    assert client.session.verify == "/etc/platform-ca.pem" and client.session.cert == ("c.pem", "k.pem")
    cases = [(requests.exceptions.SSLError("certificate verify failed"), errors.PROVIDER_SECURITY, False),
             (requests.exceptions.ConnectTimeout("slow"), errors.PROVIDER_UNAVAILABLE, True),
             (requests.exceptions.ReadTimeout("slow"), errors.PROVIDER_TIMEOUT, False),
             (requests.exceptions.ConnectionError("refused"), errors.PROVIDER_UNAVAILABLE, True)]
    for exc, cause, retry in cases:
        error = client._transport_failure(exc, "ur_company")
        assert (error.cause, getattr(error, "retryable", False)) == (cause, retry), exc
