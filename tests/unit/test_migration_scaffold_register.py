"""Scaffold and inventory of a register WSDL with imports, includes, nested and repeated structures,
attributes, simple content, enumerations, a choice, nillable values, searches, paging and result codes
(tests/fixtures/wsdl/register/): nothing of any response is dropped, a request element naming a field
inside a nested list is a search on it with its index, TODO(decide) marks only what a person decides,
and a type missing from the schemas names the operation and the type."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from tests.migration_helpers import todo_lines
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.cli import main
from viss_bridge.facade.legacy_contract import load_contract
from viss_bridge.migration.wsdl import WsdlError, read_wsdl

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "wsdl"
REGISTER = FIXTURES / "register" / "transport.wsdl"
INSPECTIONS = FIXTURES / "register" / "inspections.wsdl"
CSDD = ROOT / "wsdl" / "CSDD-Transportlidzekli-v1-0.wsdl"


@pytest.fixture(scope="module")
def drafts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("register") / "drafts"
    result = CliRunner().invoke(main, ["migrate", "scaffold", str(REGISTER), "-o", str(out)])
    assert result.exit_code == 0, result.output
    return out


def _mapping(drafts: Path) -> dict[str, Any]:
    return yaml.safe_load((drafts / "legacy" / "tlr-registrs-v2-0.yaml").read_text())


def covered(operation: dict[str, Any]) -> set[str]:
    """Every response element path (from the Body's child) an operation mapping carries, read from the YAML."""
    paths: set[str] = set()

    def walk(prefix: str, fields: dict[str, Any]) -> None:
        for key, target in fields.items():
            if key == "#text":
                continue  # the enclosing element's own content
            path = f"{prefix}/{key}"
            paths.add(path)
            if isinstance(target, dict) and "constant" not in target:
                inner = f"{path}/{target['item']}" if target.get("item") else path
                paths.add(inner)
                walk(inner, target.get("fields") or {})

    kind = operation.get("kind", "lookup")
    if kind == "changes":
        base = f"{operation['items']}/{operation['record']}"
        paths |= {operation["items"], f"{operation['items']}/{operation['changed_at']}", operation["more"]}
    elif operation.get("single") or kind == "lookup":
        base = operation["response"]
    else:
        base = f"{operation['wrapper']}/{operation['items']}" if operation.get("wrapper") else operation["items"]
        paths.add(operation.get("wrapper") or base)
    paths.add(base)
    walk(base, operation["fields"])
    beside = [*operation.get("constants", {}), *operation.get("computed", {}),
              *(operation.get("not_found") or {}).get("answer", {})]
    beside += [operation["paging"]["cursor_out"]] if (operation.get("paging") or {}).get("cursor_out") else []
    for name in beside:  # Status.Code: the Status element and its Code
        parts = name.split(".")
        paths |= {"/".join(parts[:end]) for end in range(1, len(parts) + 1)}
    return paths


@pytest.mark.parametrize("wsdl", [REGISTER, CSDD], ids=["fixture", "csdd"])
def test_every_element_of_every_response_is_in_the_mapping(wsdl: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["migrate", "scaffold", str(wsdl), "-o", str(tmp_path)])
    assert result.exit_code == 0, result.output
    [mapping_file] = (tmp_path / "legacy").glob("*.yaml")
    operations = yaml.safe_load(mapping_file.read_text())["operations"]
    inventory = read_wsdl(str(wsdl))
    served = inventory.services[0].operations()
    assert [op.name for op in served] == list(operations)  # every operation is mapped
    for op in served:
        in_schema = {row.path for row in op.output.fields}
        assert in_schema == covered(operations[op.name]), op.name  # nothing dropped, nothing invented


def test_drafts_load_as_they_are(drafts: Path) -> None:
    validated = CliRunner().invoke(main, ["catalog", "validate", str(drafts)])
    assert validated.exit_code == 0, validated.output
    assert "1 legacy contract(s) valid: tlr-registrs-v2-0" in validated.output
    load_contract(drafts / "legacy" / "tlr-registrs-v2-0.yaml").check_against(load_catalog(drafts))
    assert (drafts / "legacy" / "types" / "vehicle-types.xsd").is_file()
    assert (drafts / "legacy" / "types" / "common.xsd").is_file()


def test_todo_decide_marks_only_names_owner_access_subject_and_not_found(drafts: Path) -> None:
    todos = todo_lines(drafts)
    assert {category for _file, category, _text, _line in todos} == {"name", "owner", "access", "subject",
                                                                      "not_found"}
    about = {(category, line.split(":")[0].strip()) for _file, category, _text, line in todos}
    assert about == {("name", "dataset"), ("name", "title"), ("owner", "owner"), ("subject", "subject"),
                     ("access", "access"), ("access", "# consumer"), ("not_found", "not_found")}
    # the key, the searches and their indexes are not guesses: no TODO
    manifest = (drafts / "tlr_vehicle.yaml").read_text()
    assert "# key: the request of GetVehicle (Plate -> plate)" in manifest


def test_a_request_element_naming_a_field_in_a_nested_list_is_a_search_with_its_index(drafts: Path) -> None:
    operations = _mapping(drafts)["operations"]
    find = operations["FindVehicles"]
    assert find["kind"] == "search" and find["request"] == {
        "OwnerPersonCode": "owners[].person_code", "Fuel": {"field": "technical.fuel", "optional": True}}
    assert (find["wrapper"], find["items"]) == ("Vehicles", "Vehicle")
    # paging from the schema: PageSize default="10", its type's maxInclusive 50
    assert find["paging"] == {"page": "PageNumber", "page_size": "PageSize", "default_page_size": 10,
                              "max_page_size": 50}
    assert find["computed"] == {"Total": "total", "PageNumber": "page", "MoreAvailable": "more"}
    by_vin = operations["GetVehicleByVin"]
    assert (by_vin["kind"], by_vin["single"], by_vin["request"]) == ("search", True, {"Vin": "vin"})
    dataset = load_catalog(drafts).get("tlr_vehicle")
    assert dataset.key == ("plate",)
    assert dataset.indexes == ("vin", "owners[].person_code", "technical.fuel")


def test_result_codes_are_constants_and_not_found_drafts(drafts: Path) -> None:
    operations = _mapping(drafts)["operations"]
    get = operations["GetVehicle"]
    assert get["constants"] == {"ResultCode": 0}  # the first value of ResultCodeType's enumeration
    assert get["not_found"] == {"answer": {"ResultCode": 1, "ResultText": "Vehicle not found"}}
    # its response requires the Vehicle: the old service must have answered "not found" with a fault
    assert operations["GetVehicleByVin"]["not_found"] == {"fault": {"code": "Client.VehicleNotFound",
                                                                    "string": "Vehicle not found"}}


def test_nested_structures_attributes_enums_choices_nillable_become_manifest_shapes(drafts: Path) -> None:
    dataset = load_catalog(drafts).get("tlr_vehicle")
    fields = {f.name: f for f in dataset.fields}
    technical = {f.name: f for f in fields["technical"].fields}
    assert fields["technical"].type.value == "object"  # a non-repeated nested structure is an object
    assert technical["fuel"].enum == ("petrol", "diesel", "electric")
    assert technical["power_kw"].nillable and not technical["power_kw"].required
    assert not technical["engine_volume"].required and not technical["battery_kwh"].required  # xs:choice
    odometer = {f.name: (f.type.value, f.xml) for f in fields["odometer"].fields}
    assert odometer == {"value": ("integer", "text"), "unit": ("string", "attribute")}
    owners = {f.name: f for f in fields["owners"].fields}
    assert fields["owners"].type.value == "list" and owners["kind"].xml == "attribute"
    assert [f.name for f in owners["contact"].fields] == ["value", "kind"]
    assert fields["previous_plates"].items.value == "string" and fields["previous_plates"].max_length == 8
    assert fields["remark"].items.value == "string"
    assert fields["record_version"].type.value == "integer"  # an attribute of the record itself
    assert dataset.subject == "keeper_code"  # typed PersonCodeType
    get = _mapping(drafts)["operations"]["GetVehicle"]["fields"]
    assert get["Technical"]["fields"]["Mass"] == {"fields": {"#text": "mass", "@unit": {"constant": "kg"}}}
    assert get["Odometer"] == {"field": "odometer", "fields": {"#text": "value", "@unit": "unit"}}
    assert get["PreviousPlates"] == {"field": "previous_plates", "item": "Plate"}
    manifest = (drafts / "tlr_vehicle.yaml").read_text()
    assert "# NOTE: Vehicle/Technical/EngineVolume: one branch of an xs:choice; made optional" in manifest


def test_a_missing_type_names_the_operation_and_the_type_and_the_rest_is_inventoried(tmp_path: Path) -> None:
    inventory = read_wsdl(str(INSPECTIONS))
    ops = {op.name: op for op in inventory.services[0].operations()}
    [problem] = ops["GetInspections"].problems
    assert problem.startswith("GetInspections output: inspections.wsdl: line 21: type ")
    assert "InspectionListType is not defined" in problem
    assert [r.path for r in ops["GetStation"].output.fields][:3] == ["Station", "Station/StationCode", "Station/Name"]

    runner = CliRunner()
    result = runner.invoke(main, ["migrate", "inventory", str(INSPECTIONS), "--format", "json"])
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    assert data["problems"] == [f"{INSPECTIONS}: {problem}"]
    station = data["wsdls"][0]["services"][0]["ports"][0]["operations"][1]
    assert station["name"] == "GetStation" and station["constructs"]["kind"] == ["lookup"]
    assert f"problem: {INSPECTIONS}: GetInspections output" in result.stderr

    scaffolded = runner.invoke(main, ["migrate", "scaffold", str(INSPECTIONS), "-o", str(tmp_path)])
    assert scaffolded.exit_code == 0, scaffolded.output
    assert "not mapped: GetInspections: cannot be read: GetInspections output: inspections.wsdl: line 21" \
           in scaffolded.output
    assert list(yaml.safe_load((tmp_path / "legacy" / "tlr-apskates-v1-0.yaml").read_text())["operations"]) == [
        "GetStation"]


def test_inventory_reports_each_construct_per_operation() -> None:
    result = CliRunner().invoke(main, ["migrate", "inventory", str(REGISTER), "--format", "json"])
    assert result.exit_code == 0, result.output
    ops = {o["name"]: o["constructs"] for o in json.loads(result.stdout)["wsdls"][0]["services"][0]["ports"][0][
        "operations"]}
    find = ops["FindVehicles"]
    assert find["kind"] == ["search"]
    assert find["criteria"] == ["OwnerPersonCode -> owners[].person_code", "Fuel -> technical.fuel"]
    assert find["paging"] == ["page=PageNumber", "page_size=PageSize"]
    assert find["result_codes"] == ["ResultCode"]
    assert "output:Vehicles/Vehicle/Owners (Owner)" in find["wrappers"]
    assert find["schemas"] == ["common.xsd (xs:include)", "vehicle-types.xsd (xs:import)"]
    get = ops["GetVehicle"]
    assert get["kind"] == ["lookup"] and get["result_codes"] == ["ResultCode", "ResultText"]
    assert "output:Vehicle/Technical" in get["objects"]
    assert "output:Vehicle/@recordVersion" in get["attributes"]
    assert "output:Vehicle/Odometer" in get["simple_content"]
    assert "output:Vehicle/Technical/Fuel (petrol, diesel, electric)" in get["enums"]
    assert get["nillable"] == ["output:Vehicle/Technical/PowerKw"]
    assert get["fixed"] == ["output:Vehicle/Technical/Mass/@unit=kg"]
    assert "output:Vehicle/Technical/EngineVolume" in get["choices"]
    assert "output:Vehicle/Remark" in get["lists_of_values"]
    table = CliRunner().invoke(main, ["migrate", "inventory", str(REGISTER)])
    assert "constructs: search; criteria: OwnerPersonCode -> owners[].person_code" in table.output


def test_a_schema_outside_the_wsdls_folder_is_not_read() -> None:
    with pytest.raises(WsdlError, match="outside the WSDL's folder"):
        read_wsdl(str(FIXTURES / "broken" / "escape.wsdl"))


CURSOR_WSDL = """<?xml version="1.0" encoding="UTF-8"?>
<wsdl:definitions name="Licences" targetNamespace="http://ivis.eps.gov.lv/XMLSchemas/TLR/Licences/v1-0"
    xmlns:tns="http://ivis.eps.gov.lv/XMLSchemas/TLR/Licences/v1-0" xmlns:wsdl="http://schemas.xmlsoap.org/wsdl/"
    xmlns:soap="http://schemas.xmlsoap.org/wsdl/soap/" xmlns:xs="http://www.w3.org/2001/XMLSchema">
  <wsdl:types>
    <xs:schema targetNamespace="http://ivis.eps.gov.lv/XMLSchemas/TLR/Licences/v1-0" elementFormDefault="qualified">
      <xs:complexType name="LicenceType"><xs:sequence>
        <xs:element name="Number" type="xs:string"/><xs:element name="HolderCode" type="xs:string"/>
        <xs:element name="Category" type="xs:string" maxOccurs="unbounded"/>
      </xs:sequence></xs:complexType>
      <xs:element name="FindLicencesRequest"><xs:complexType><xs:sequence>
        <xs:element name="HolderCode" type="xs:string"/>
        <xs:element name="Cursor" type="xs:string" minOccurs="0"/>
        <xs:element name="PageSize" type="xs:int" minOccurs="0"/>
      </xs:sequence></xs:complexType></xs:element>
      <xs:element name="FindLicencesResponse"><xs:complexType><xs:sequence>
        <xs:element name="Status"><xs:complexType><xs:sequence>
          <xs:element name="Code" type="xs:string"/><xs:element name="Text" type="xs:string"/>
        </xs:sequence></xs:complexType></xs:element>
        <xs:element name="Licence" type="tns:LicenceType" minOccurs="0" maxOccurs="unbounded"/>
        <xs:element name="NextCursor" type="xs:string" minOccurs="0"/>
      </xs:sequence></xs:complexType></xs:element>
    </xs:schema>
  </wsdl:types>
  <wsdl:message name="In"><wsdl:part name="parameters" element="tns:FindLicencesRequest"/></wsdl:message>
  <wsdl:message name="Out"><wsdl:part name="parameters" element="tns:FindLicencesResponse"/></wsdl:message>
  <wsdl:portType name="P"><wsdl:operation name="FindLicences"><wsdl:input message="tns:In"/>
    <wsdl:output message="tns:Out"/></wsdl:operation></wsdl:portType>
  <wsdl:binding name="B" type="tns:P"><soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>
    <wsdl:operation name="FindLicences"><soap:operation soapAction="FindLicences"/>
      <wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output>
    </wsdl:operation></wsdl:binding>
  <wsdl:service name="LicencesService"><wsdl:port name="Port" binding="tns:B">
    <soap:address location="http://tlr.example.invalid/ivis/Licences/v1-0"/></wsdl:port></wsdl:service>
</wsdl:definitions>
"""


def test_cursor_paging_and_a_status_structure_beside_a_repeated_record(tmp_path: Path) -> None:
    wsdl = tmp_path / "licences.wsdl"
    wsdl.write_text(CURSOR_WSDL, encoding="utf-8")
    out = tmp_path / "drafts"
    result = CliRunner().invoke(main, ["migrate", "scaffold", str(wsdl), "-o", str(out)])
    assert result.exit_code == 0, result.output
    [operation] = yaml.safe_load((out / "legacy" / "tlr-licences-v1-0.yaml").read_text())["operations"].values()
    assert (operation["kind"], operation["items"], operation["request"]) == ("search", "Licence",
                                                                             {"HolderCode": "holder_code"})
    assert operation["paging"] == {"cursor": "Cursor", "cursor_out": "NextCursor", "page_size": "PageSize",
                                   "default_page_size": 20, "max_page_size": 100}
    assert operation["constants"] == {"Status.Code": "OK", "Status.Text": "OK"}
    assert operation["not_found"] == {"answer": {"Status.Code": "NOT_FOUND", "Status.Text": "Licence not found"}}
    # no lookup: the key is a guess, and said so
    assert {c for _f, c, _t, _l in todo_lines(out)} == {"name", "owner", "access", "subject", "key", "not_found"}
    assert load_catalog(out).get("tlr_licence").fields[2].items.value == "string"
    validated = CliRunner().invoke(main, ["catalog", "validate", str(out)])
    assert validated.exit_code == 0 and "1 legacy contract(s) valid: tlr-licences-v1-0" in validated.output
    in_schema = {row.path for row in read_wsdl(str(wsdl)).services[0].operations()[0].output.fields}
    assert in_schema == covered(operation)
