"""The contract mapping format v2: the model, and records <-> legacy trees at any depth (docs/legacy.md)."""

from __future__ import annotations

import datetime as dt
import shutil
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.catalog.contract_mapping import ContractMapping, OperationMapping, map_to_dataset, map_to_legacy
from viss_bridge.catalog.manifest import ManifestError
from viss_bridge.demo.world import DEMO_CATALOG_DIR
from viss_bridge.facade.legacy_contract import load_contract, zeep_values

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "viss_bridge" / "demo" / "contracts" / "csdd.yaml"
RECORD = {
    "plate": "AB1234", "vin": "WVWZZZ1JZXW000001", "holder_code": "220903-22422", "make": "Škoda", "model": "Octavia",
    "first_registered": dt.date(2019, 5, 1),
    "technical": {"mass": Decimal("1385"), "fuel": "diesel", "power_kw": None},
    "owners": [{"person_code": "220903-22422", "share": Decimal("0.50"), "from": dt.date(2019, 5, 1),
                "contacts": [{"kind": "phone", "value": "+371 21234567"}]},
               {"person_code": "311299-19932", "share": Decimal("0.50"), "from": dt.date(2020, 1, 2), "contacts": []}],
    "holders": [{"kind": "company", "code": "40003000001", "from": dt.date(2019, 5, 1), "to": dt.date(2021, 1, 1)}],
    "previous_plates": ["KA1000", "KB2000"],
}


def _fields() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load(SHIPPED.read_text())["operations"]["GetVehicleByPlate"]["fields"]


def test_the_shipped_contract_loads_and_fits_its_wsdl_and_dataset(tmp_path: Path) -> None:
    shutil.copy(SHIPPED, tmp_path)
    for schema in (ROOT / "wsdl").glob("CSDD-*"):
        shutil.copy(schema, tmp_path)
    contract = load_contract(tmp_path / "csdd.yaml")
    contract.check_against(load_catalog(DEMO_CATALOG_DIR))
    assert set(contract.operations) == {"GetVehicleByPlate", "GetVehicleByVin", "FindVehiclesByOwner", "GetVehicleChanges"}
    search = contract.mapping.operations["FindVehiclesByOwner"]
    assert search.paging is not None and search.paging.page == "PageNumber" and search.computed["Total"] == "total"
    assert search.criteria_fields()["Fuel"].optional and not search.criteria_fields()["OwnerPersonCode"].optional


def test_map_to_legacy_at_depth() -> None:
    mapping = OperationMapping.model_validate({"dataset": "d", "request": {"P": "plate"}, "response": "V",
                                               "fields": _fields()}).fields
    tree = map_to_legacy(mapping, RECORD)
    assert tree["Technical"] == {"Mass": {"#text": Decimal("1385"), "@unit": "kg"}, "Fuel": "diesel"}  # nil left out
    assert tree["Owners"]["Owner"][0]["Contact"] == [{"@kind": "phone", "#text": "+371 21234567"}]
    assert "Contact" not in tree["Owners"]["Owner"][1]  # an empty repeated element: none rendered
    assert tree["Holders"] == {"Holder": [{"@kind": "company", "Code": "40003000001", "From": dt.date(2019, 5, 1),
                                           "To": dt.date(2021, 1, 1)}]}
    assert tree["PreviousPlates"] == {"Plate": ["KA1000", "KB2000"]}
    assert map_to_legacy(mapping, {**RECORD, "previous_plates": []})["PreviousPlates"] == {"Plate": []}  # wrapper stays
    assert zeep_values(tree)["Technical"]["Mass"] == {"_value_1": Decimal("1385"), "unit": "kg"}


def test_map_to_dataset_is_the_inverse_for_zeeps_answers() -> None:
    mapping = OperationMapping.model_validate({"dataset": "d", "request": {"P": "plate"}, "response": "V",
                                               "fields": _fields()}).fields
    answer = zeep_values(map_to_legacy(mapping, RECORD))  # as zeep serialises an answer: attributes by name
    answer["Technical"]["PowerKw"] = None
    back = map_to_dataset(mapping, answer, load_catalog(DEMO_CATALOG_DIR).get("csdd_vehicle").fields)
    assert back["technical"] == RECORD["technical"]
    assert back["owners"][1]["contacts"] == [] and back["owners"][0]["contacts"] == RECORD["owners"][0]["contacts"]
    assert back["holders"] == RECORD["holders"] and back["previous_plates"] == RECORD["previous_plates"]


@pytest.mark.parametrize("operation, message", [
    ({"kind": "search", "fields": {"A": "a"}}, "needs 'request'"),
    ({"kind": "search", "request": {"A": "a"}, "fields": {"A": "a"}}, "needs 'items'"),
    ({"kind": "search", "single": True, "request": {"A": "a"}, "fields": {"A": "a"}}, "needs 'response'"),
    ({"request": {"A": "a"}, "response": "R", "fields": {"A": "a"},
      "not_found": {"answer": {"Code": 1}, "fault": {"code": "Client.X", "string": "x"}}}, "exactly one"),
    ({"request": {"A": "a"}, "response": "R", "fields": {"A": {"item": "B"}}}, "needs 'field'"),
    ({"request": {"A": "a"}, "response": "R", "fields": {"A": "a"}, "computed": {"T": "sum"}}, "total"),
    ({"kind": "search", "request": {"A": "a"}, "items": "I", "fields": {"A": "a"},
      "paging": {"page": "P", "cursor": "C"}}, "not both"),
])
def test_the_model_refuses_incomplete_operations(operation: dict, message: str) -> None:  # type: ignore[type-arg]
    with pytest.raises(ValidationError) as caught:
        ContractMapping.model_validate({"wsdl": "x.wsdl", "operations": {"Op": {"dataset": "d", **operation}}})
    assert message in str(caught.value)


def test_a_mapping_naming_what_the_wsdl_lacks_names_line_and_element(tmp_path: Path) -> None:
    for schema in (ROOT / "wsdl").glob("CSDD-*"):
        shutil.copy(schema, tmp_path)
    text = SHIPPED.read_text().replace('"@unit": {constant: kg}', '"@units": {constant: kg}')
    (tmp_path / "csdd.yaml").write_text(text)
    with pytest.raises(ManifestError) as caught:
        load_contract(tmp_path / "csdd.yaml")
    assert caught.value.field == "operations.GetVehicleByPlate.fields.Technical.fields.Mass.fields.@units"
    assert "Mass has no attribute units" in caught.value.reason
    assert caught.value.line == next(i for i, line in enumerate(text.splitlines(), 1) if "@units" in line)


def test_a_value_whose_type_the_element_cannot_carry_is_refused(tmp_path: Path) -> None:
    for schema in (ROOT / "wsdl").glob("CSDD-*"):
        shutil.copy(schema, tmp_path)
    text = SHIPPED.read_text().replace("FirstRegistered: first_registered", "FirstRegistered: technical.mass")
    (tmp_path / "csdd.yaml").write_text(text)
    contract = load_contract(tmp_path / "csdd.yaml")
    errors = contract.dataset_errors(load_catalog(DEMO_CATALOG_DIR))
    messages = {(e.field, e.reason) for e in errors}
    assert ("operations.GetVehicleByPlate.fields.FirstRegistered",
            "'technical.mass' is decimal, but FirstRegistered is Date: the types do not fit") in messages
    assert not any("mapped twice" in reason for _, reason in messages)
