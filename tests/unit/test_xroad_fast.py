"""X-Road lookups answered without Spyne (facade/xroad_fast.py) say exactly what the Spyne path says.

Both facades run the real ``XRoadFacade.handle`` and the real ``GuardedRead`` over the same store and
permissions; one with ``fast_lookups=False`` (every call through Spyne, as before issue 12). For every
dataset of the demo catalog (and one made to hold every type and edge value), every record, with all
fields and with a narrowed set of readable fields, and for missing, malformed and unknown keys, the two
answers must have the same HTTP status, the same fault (code and text) and the same XML after
exclusive C14N.

Why canonicalise: equality must not depend on serialisation details that carry no meaning (attribute
quoting, where a namespace is declared, the XML declaration). Today the fast path writes the very same
bytes; exclusive C14N keeps the comparison meaningful if lxml ever moves a declaration. A fault's
faultdetail is a fresh UUID per fault, so it is replaced by a placeholder before comparing.
"""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any, Callable

import pytest
from lxml import etree

from viss_bridge.catalog.catalog import Catalog, load_catalog
from viss_bridge.catalog.manifest import Dataset, FieldType
from viss_bridge.catalog.values import compose_key, record_to_python
from viss_bridge.demo.world import generate_world
from viss_bridge.facade import xroad_fast
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.soap_runtime import SoapResponse, parse_soap
from viss_bridge.facade.xroad import XROAD_TNS, XRoadFacade, lookup_request
from viss_bridge.xml import NS_SOAP11
from tests.permission_fakes import FakePermissions

DEMO = Path(__file__).resolve().parents[2] / "viss_bridge" / "demo" / "catalog"
CLIENT = "LV/GOV/90000069281/VID-EDS"
ENVIRON = {"REQUEST_METHOD": "POST", "PATH_INFO": "/xroad", "QUERY_STRING": "", "SERVER_NAME": "bridge.example",
           "SERVER_PORT": "80", "wsgi.url_scheme": "http"}
EVERY_TYPE = """\
dataset: every_type
version: v1
title: {lv: "Visi tipi", en: "Every type"}
owner: LV/GOV/90000000001/TEST
key: [code]
subject: code
access: restricted
fields:
  - {name: code, type: string, required: true, max_length: 12}
  - {name: count, type: integer}
  - {name: level, type: integer, enum: [1, 2, 3]}
  - {name: amount, type: decimal}
  - {name: active, type: boolean}
  - {name: born, type: date}
  - {name: seen, type: datetime}
  - {name: note, type: string, nillable: true}
  - {name: must, type: string, required: true}
  - {name: box, type: object, nillable: true, fields: [{name: inner, type: decimal, nillable: true}, {name: flag, type: boolean}]}
  - {name: opt, type: object, fields: [{name: x, type: string}]}
  - {name: days, type: list, items: date}
  - {name: moments, type: list, items: datetime}
  - {name: flags, type: list, items: boolean}
  - {name: sums, type: list, items: decimal}
  - {name: kinds, type: list, items: string, enum: [a, b]}
  - name: rows
    type: list
    fields:
      - {name: at, type: datetime, required: true}
      - {name: n, type: integer, nillable: true}
      - {name: sub, type: list, fields: [{name: y, type: string}, {name: z, type: decimal, required: true}]}
source:
  kind: store
"""
EVERY_TYPE_RECORDS: list[dict[str, Any]] = [
    {"code": "A1", "count": -7, "level": 2, "amount": "1E+3", "active": False, "born": "1999-12-31",
     "seen": "2026-01-02T03:04:05.123456+02:00", "note": "x < y & \"z\"", "must": "m",
     "box": {"inner": "0.000", "flag": True}, "opt": {"x": "ö"},
     "days": ["2020-02-29", "1900-01-01"], "moments": ["2026-06-01T00:00:00Z", "2026-06-01T12:30:00"],
     "flags": [True, False], "sums": ["0.1", "-2.50", "3"], "kinds": ["b", "a"],
     "rows": [{"at": "2026-03-04T05:06:07+00:00", "n": 0, "sub": [{"y": "q", "z": "1.5"}, {"z": "2"}]},
              {"at": "2026-03-04T05:06:07.5-05:00", "sub": []}]},
    {"code": "B2", "must": "only"},  # nillable, required and optional values all missing
    {"code": "C3", "box": {}, "note": "", "must": "", "rows": [{"at": "2026-01-01T00:00:00+00:00"}]},
]


class FakeStore:
    """Records as the store keeps them (JSON) and returns them (``record_to_python``), by composed key."""

    def __init__(self, catalog: Catalog, records: dict[str, list[dict[str, Any]]]) -> None:
        self.rows = {(name, compose_key(catalog.datasets[name].key_fields, r)): json.dumps(r, default=str)
                     for name, some in records.items() for r in some}

    def get(self, dataset: Dataset, key_values: dict[str, Any]) -> dict[str, Any] | None:
        data = self.rows.get((dataset.dataset, compose_key(dataset.key_fields, key_values)))
        return None if data is None else record_to_python(dataset.fields, json.loads(data))


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    folder = tmp_path_factory.mktemp("catalog")
    for manifest in DEMO.glob("*.yaml"):
        shutil.copy(manifest, folder / manifest.name)
    (folder / "every_type.yaml").write_text(EVERY_TYPE)
    return load_catalog(folder)


@pytest.fixture(scope="module")
def records() -> dict[str, list[dict[str, Any]]]:
    world = generate_world(200)
    return {**world, "every_type": EVERY_TYPE_RECORDS}


def request_bytes(dataset: Dataset, keys: dict[str, str], edit: Callable[[etree._Element], None] | None = None) -> bytes:
    raw = lookup_request(dataset, CLIENT, keys, "msg-1", user_id="EE12345")
    if edit is None:
        return raw
    envelope = etree.fromstring(raw)
    edit(envelope.find(f"{{{NS_SOAP11}}}Body")[0])
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def answer(facade: XRoadFacade, raw: bytes) -> SoapResponse:
    request = parse_soap(raw, NS_SOAP11, 1 << 20)
    try:
        return facade.handle(request, dict(ENVIRON), CallInfo())
    except BridgeFault as fault:  # raised before the dataset call (headers, routing): same for both
        return SoapResponse(fault.http_status, b"", fault=fault)


def canonical(response: SoapResponse) -> bytes:
    body = response.body
    if response.fault is not None:
        body = body.replace(response.fault.fault_id.encode(), b"FAULT-ID")
    if not body:
        return b""
    return etree.tostring(etree.fromstring(body), method="c14n", exclusive=True)  # type: ignore[no-any-return]


def same_both_ways(catalog: Catalog, store: FakeStore, permissions: FakePermissions, dataset: Dataset,
                   raw: bytes) -> SoapResponse:
    fast = XRoadFacade(catalog, store, permissions, "LV", "http://bridge.example")  # type: ignore[arg-type]
    spyne = XRoadFacade(catalog, store, permissions, "LV", "http://bridge.example",  # type: ignore[arg-type]
                        fast_lookups=False)
    quick, slow = answer(fast, raw), answer(spyne, raw)
    assert fast._fast_for(dataset, permissions.fields) is not None, "the fast path did not answer"
    assert (quick.status, quick.content_type) == (slow.status, slow.content_type)
    assert (quick.fault and (quick.fault.code, quick.fault.message)) == (slow.fault and (slow.fault.code, slow.fault.message))
    assert canonical(quick) == canonical(slow)
    return quick


def narrowed_fields(dataset: Dataset) -> tuple[str, ...]:
    """Every other non-key field (structures included where the dataset has them)."""
    others = [f.name for f in dataset.fields if f.name not in dataset.key]
    return tuple(others[1::2]) or tuple(others[:1])


def dataset_names() -> list[str]:
    return sorted(p.stem for p in DEMO.glob("*.yaml")) + ["every_type"]


@pytest.mark.parametrize("name", dataset_names())
@pytest.mark.parametrize("narrow", [False, True], ids=["all-fields", "narrowed"])
def test_every_record_is_answered_as_spyne_answers_it(catalog: Catalog, records: dict[str, list[dict[str, Any]]],
                                                      name: str, narrow: bool) -> None:
    dataset = catalog.datasets[name]
    assert xroad_fast.unsupported(dataset) is None
    store = FakeStore(catalog, records)
    permissions = FakePermissions(fields=narrowed_fields(dataset) if narrow else None)
    for record in records[name]:
        response = same_both_ways(catalog, store, permissions, dataset,
                                  request_bytes(dataset, {k: record[k] for k in dataset.key}))
        assert response.fault is None and b"<tns:record>" in response.body


KEY_PROBLEMS: dict[str, Callable[[etree._Element], Any]] = {
    "missing": lambda body: [body.remove(c) for c in list(body)],
    "empty": lambda body: [setattr(c, "text", None) for c in body],
    "blank": lambda body: [setattr(c, "text", "   ") for c in body],
    "whitespace": lambda body: [setattr(c, "text", f"\t {c.text}\n") for c in body],
    "too-long": lambda body: [setattr(c, "text", "X" * 300) for c in body],
    "nested-element": lambda body: [etree.SubElement(c, f"{{{XROAD_TNS}}}inner").__setattr__("tail", "tail")
                                    for c in body],
    "other-namespace": lambda body: [setattr(c, "tag", f"{{urn:other}}{etree.QName(c).localname}") for c in body],
    "no-namespace": lambda body: [setattr(c, "tag", etree.QName(c).localname) for c in body],
    "repeated": lambda body: [body.append(etree.fromstring(etree.tostring(c))) for c in list(body)],
    "unknown-element": lambda body: etree.SubElement(body, f"{{{XROAD_TNS}}}nonsense").__setattr__("text", "1"),
    "xsi-nil": lambda body: [c.set("{http://www.w3.org/2001/XMLSchema-instance}nil", "true") for c in body],
    "attribute": lambda body: [c.set("lang", "lv") for c in body],
    "unknown-record": lambda body: [setattr(c, "text", "NO-SUCH-KEY") for c in body],
}


@pytest.mark.parametrize("problem", sorted(KEY_PROBLEMS))
@pytest.mark.parametrize("name", ["csdd_vehicle", "fpr_person", "every_type"])
def test_missing_malformed_and_unknown_keys_are_answered_as_spyne_answers_them(
        catalog: Catalog, records: dict[str, list[dict[str, Any]]], name: str, problem: str) -> None:
    dataset = catalog.datasets[name]
    record = records[name][0]
    raw = request_bytes(dataset, {k: record[k] for k in dataset.key}, KEY_PROBLEMS[problem])
    response = same_both_ways(catalog, FakeStore(catalog, records), FakePermissions(), dataset, raw)
    if problem in ("missing", "empty"):
        assert response.fault is not None and response.fault.code == "Client.InvalidRequest"
        assert "is missing" in response.fault.message
    if problem == "unknown-record":
        assert response.fault is None and b"<tns:record>" not in response.body


@pytest.mark.parametrize("refusal", ["restricted-person", "quota-spent"])
def test_faults_of_the_guarded_read_are_answered_as_spyne_answers_them(
        catalog: Catalog, records: dict[str, list[dict[str, Any]]], refusal: str) -> None:
    dataset = catalog.datasets["fpr_person"]
    record = records["fpr_person"][3]
    permissions = (FakePermissions(restricted={record["person_code"]}) if refusal == "restricted-person"
                   else FakePermissions(refuse_use=True))
    response = same_both_ways(catalog, FakeStore(catalog, records), permissions, dataset,
                              request_bytes(dataset, {"person_code": record["person_code"]}))
    assert response.fault is not None and response.status == 500


def test_the_comparison_notices_a_changed_format(catalog: Catalog, records: dict[str, list[dict[str, Any]]],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The proof can fail: a decimal written with a fixed point instead of as Spyne writes it is caught."""
    monkeypatch.setitem(xroad_fast.FORMATTERS, FieldType.DECIMAL, lambda value: f"{Decimal(value):f}")
    dataset = catalog.datasets["every_type"]
    with pytest.raises(AssertionError):
        same_both_ways(catalog, FakeStore(catalog, records), FakePermissions(), dataset,
                       request_bytes(dataset, {"code": "A1"}))


def test_datasets_the_fast_path_does_not_cover_stay_on_spyne(catalog: Catalog) -> None:
    """An integer key or a value carried as an XML attribute: decided once, the Spyne path answers."""
    every = catalog.datasets["every_type"]
    integer_key = every.model_copy(update={"fields": (every.fields[1], *every.fields[2:]), "key": ("count",)})
    assert "integer" in (xroad_fast.unsupported(integer_key) or "")
    facade = XRoadFacade(catalog, None, FakePermissions(), "LV", "http://bridge.example")  # type: ignore[arg-type]
    assert facade._fast_for(integer_key, None) is None
