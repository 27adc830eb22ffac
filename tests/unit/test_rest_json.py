"""The REST face's JSON typing and fault mapping on their own (docs/rest.md)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import jsonschema

from viss_bridge.catalog.manifest import parse_manifest
from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.problems import problem_json, problem_kind
from viss_bridge.facade.rest_json import json_record, key_object, record_schema

DATASET = parse_manifest(
    "dataset: things\ntitle: {lv: a, en: b}\nowner: LV/GOV/90000000001/OWNER\nkey: [code, day]\nfields:\n"
    "  - {name: code, type: string, max_length: 5}\n  - {name: day, type: date}\n"
    "  - {name: amount, type: decimal}\n  - {name: at, type: datetime}\n  - {name: n, type: integer}\n"
    "  - {name: ok, type: boolean}\n"
    "  - name: parts\n    type: list\n    fields: [{name: label, type: string}, {name: weight, type: decimal}]\n",
    "things.yaml")


def test_records_are_typed_and_conform_to_their_schema() -> None:
    record = {"code": "A1", "day": dt.date(2026, 1, 2), "amount": Decimal("1E+3"), "n": 3, "ok": False,
              "at": dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc), "parts": [
                  {"label": "x", "weight": Decimal("0.10")}]}
    body = json_record(DATASET, record)
    assert body == {"code": "A1", "day": "2026-01-02", "amount": "1000", "at": "2026-01-02T03:04:05+00:00",
                    "n": 3, "ok": False, "parts": [{"label": "x", "weight": "0.10"}]}
    jsonschema.validate(body, record_schema(DATASET), format_checker=jsonschema.FormatChecker())
    assert json_record(DATASET, {"code": "A1", "day": dt.date(2026, 1, 2), "amount": None}) == \
        {"code": "A1", "day": "2026-01-02"}  # empty fields left out, as SOAP leaves the element out
    assert key_object(DATASET, "A1\x1f2026-01-02") == {"code": "A1", "day": "2026-01-02"}


def test_every_fault_code_has_its_http_status() -> None:
    expected = {faults.UNKNOWN_SERVICE: 404, faults.ACCESS_DENIED: 403, faults.ACCESS_DENIED_RESTRICTED: 403,
                faults.INVALID_REQUEST: 400, faults.PERMISSION_REQUIRED: 400, faults.LOGGING_FAILED: 503,
                faults.TIMESTAMPING_FAILED: 503, f"{faults.SERVICE_FAILED}.DatabaseError": 503,
                f"{faults.SERVICE_FAILED}.ProviderFault": 502, f"{faults.SERVICE_FAILED}.ProviderTimeout": 504,
                f"{faults.SERVICE_FAILED}.InternalError": 500, faults.INVALID_SOAP: 400}
    assert {code: problem_kind(code).status for code in expected} == expected
    assert problem_kind(faults.ACCESS_DENIED).type != problem_kind(faults.ACCESS_DENIED_RESTRICTED).type
    fault = BridgeFault(faults.ACCESS_DENIED_RESTRICTED, "withheld")
    status, document = problem_json(fault)
    assert status == 403 and document == {"type": "urn:viss-bridge:problem:subject-restriction",
                                          "title": document["title"], "status": 403, "detail": "withheld",
                                          "instance": f"urn:uuid:{fault.fault_id}", "fault_code": fault.code}
