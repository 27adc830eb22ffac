"""WSDL inventory: the project's legacy WSDLs, imports/includes, SOAP 1.2, rpc style, broken WSDLs, formats."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from viss_bridge.cli import main
from viss_bridge.migration.inventory import run_inventory
from viss_bridge.migration.wsdl import WsdlError, read_wsdl

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures" / "wsdl"
PERSONS = ROOT / "wsdl" / "PMLP-FizPersonas-v1-0.wsdl"
ADDRESSES = ROOT / "wsdl" / "VZD-Adreses-v1-0.wsdl"
VEHICLES = FIXTURES / "imports" / "vehicles.wsdl"
BENEFITS = FIXTURES / "rpc" / "benefits.wsdl"


def _rows(inventory, operation: str, direction: str = "output"):  # type: ignore[no-untyped-def]
    op = next(o for s in inventory.services for o in s.operations() if o.name == operation)
    return {r.path: r for r in getattr(op, direction).fields}


def test_persons_wsdl_operations_elements_and_flattened_fields() -> None:
    inventory = read_wsdl(str(PERSONS))
    assert inventory.target_namespace == "http://ivis.eps.gov.lv/XMLSchemas/PMLP/FizPersonas/v1-0"
    [service] = inventory.services
    assert service.name == "FizPersonasService"
    [port] = service.ports
    assert port.soap_version == "1.1" and port.address.endswith("/ivis/FizPersonas/v1-0")
    ops = {o.name: o for o in port.operations}
    assert set(ops) == {"GetPerson", "GetPersonChanges"}
    get = ops["GetPerson"]
    assert (get.style, get.use, get.input.element, get.output.element) == ("document", "literal", "GetPersonRequest",
                                                                           "GetPersonResponse")
    assert get.soap_action.endswith("/GetPerson")
    rows = _rows(inventory, "GetPerson")
    person, death, address, kind = (rows["Person"], rows["Person/DeathDate"], rows["Person/Address"],
                                    rows["Person/Address/AddressKind"])
    assert (person.xsd_type, person.optional, person.repeated, person.depth, person.complex) == \
        ("PersonType", True, False, 1, True)
    assert (death.xsd_type, death.optional, death.depth) == ("xs:date", True, 2)
    assert (address.repeated, address.optional, address.depth) == (True, True, 2)
    assert (kind.xsd_type, kind.optional, kind.repeated, kind.depth) == ("xs:string", False, False, 3)
    assert [r.path for r in get.input.fields] == ["PersonCode"]
    # complexity: 15 fields + 2 x 1 repeated + 3 x (depth 3 - 1)
    assert (get.field_count, get.repeated_count, get.max_depth, get.complexity) == (15, 1, 3, 23)
    assert _rows(inventory, "GetPersonChanges")["Change/Person/Address/ValidFrom"].depth == 4


def test_addresses_wsdl_types() -> None:
    rows = _rows(read_wsdl(str(ADDRESSES)), "GetAddress")
    assert rows["Address/Latitude"].xsd_type == "xs:decimal"
    assert rows["Address/Flat"].optional and not rows["Address/City"].optional


def test_import_of_an_xsd_that_includes_another_soap11_and_soap12_bindings() -> None:
    inventory = read_wsdl(str(VEHICLES))
    names = [Path(d).name for d in inventory.documents]
    assert names == ["vehicles.wsdl", "common.xsd", "common-parts.xsd"]
    assert inventory.schema_count == 3
    [service] = inventory.services
    assert {p.name: p.soap_version for p in service.ports} == {"Soap11": "1.1", "Soap12": "1.2"}
    assert len(service.operations()) == 1  # the same operation bound twice is counted once
    rows = _rows(inventory, "GetVehicle")
    # element ref to another global element; simpleType restriction resolved to its builtin
    assert rows["Vehicle/RegistrationNumber"].xsd_type == "xs:string"
    # complexContent extension: base type's elements first, then the extension's, then attributes
    owner = [r.path for r in inventory.services[0].ports[1].operations[0].output.fields if r.path.startswith("Vehicle/Owner/")
             and r.depth == 3]
    assert owner == ["Vehicle/Owner/Code", "Vehicle/Owner/Name", "Vehicle/Owner/Share", "Vehicle/Owner/Address",
                     "Vehicle/Owner/@kind"]
    assert rows["Vehicle/Owner/@kind"].attribute and not rows["Vehicle/Owner/@kind"].optional
    # chameleon include: PostalAddressType from the include, in the including schema's namespace
    assert rows["Vehicle/Owner/Address"].xsd_type == "PostalAddressType"
    assert rows["Vehicle/Owner/Address/Line"].repeated and rows["Vehicle/Owner/Address/Line"].depth == 4
    assert rows["Vehicle/Owner/Address/City"].optional and rows["Vehicle/Owner/Address/City"].note.startswith("choice")
    assert rows["Vehicle/Owner"].repeated and not rows["Vehicle/Owner"].optional


def test_rpc_style_from_an_imported_wsdl() -> None:
    inventory = read_wsdl(str(BENEFITS))
    [service] = inventory.services
    [op] = service.operations()
    assert (op.style, op.input.element, op.output.element, op.input.namespace) == \
        ("rpc", "listBenefits", "listBenefitsResponse", "urn:lv:vsaa:pabalsti")
    assert [r.path for r in op.input.fields] == ["personCode", "year"]
    rows = {r.path: r for r in op.output.fields}
    assert rows["benefits/benefit"].repeated and rows["benefits/benefit/amount"].xsd_type == "xs:decimal"
    assert rows["total"].depth == 1


@pytest.mark.parametrize("name, cause", [
    ("malformed.wsdl", "not well-formed XML"),
    ("missing-import.wsdl", "imports "),
    ("remote-import.wsdl", "network location"),
])
def test_broken_wsdls_name_the_file_and_the_cause(name: str, cause: str) -> None:
    with pytest.raises(WsdlError) as raised:
        read_wsdl(str(FIXTURES / "broken" / name))
    assert raised.value.source.endswith(name)
    assert cause in raised.value.cause
    if name == "missing-import.wsdl":
        assert "types/missing.xsd" in raised.value.cause and "No such file" in raised.value.cause


def test_remote_import_resolved_from_a_local_schema_dir_and_urls_need_permission() -> None:
    inventory = read_wsdl(str(FIXTURES / "broken" / "remote-import.wsdl"), schema_dirs=(FIXTURES / "imports" / "types",))
    assert [Path(d).name for d in inventory.documents][1:] == ["common.xsd", "common-parts.xsd"]
    with pytest.raises(WsdlError, match="--allow-network"):
        read_wsdl("http://127.0.0.1:9/service?wsdl")


def test_a_doctype_is_refused() -> None:
    with pytest.raises(WsdlError, match="DOCTYPE"):
        read_wsdl(str(FIXTURES / "broken" / "doctype.wsdl"))


def test_folders_continue_past_broken_files_and_skip_imported_abstract_wsdls() -> None:
    result = run_inventory([str(FIXTURES), str(ROOT / "wsdl")])
    read = sorted(Path(i.source).name for i in result.inventories)
    assert read == ["CSDD-Transportlidzekli-v1-0.wsdl", "PMLP-FizPersonas-v1-0.wsdl", "VZD-Adreses-v1-0.wsdl",
                    "benefits.wsdl", "inspections.wsdl", "transport.wsdl", "vehicles.wsdl", "with-headers.wsdl"]
    # messages.wsdl (no service, imported by benefits.wsdl) is not an error; the three broken ones are
    assert sorted(Path(e.source).name for e in result.errors) == ["doctype.wsdl", "escape.wsdl", "malformed.wsdl",
                                                                  "missing-import.wsdl", "remote-import.wsdl"]
    # a type missing from the schemas is a problem of its operation, not of the whole WSDL
    assert [p.split(": ", 1)[1].split(":")[0] for p in result.problems] == ["GetInspections output"]


def test_cli_table_json_and_csv() -> None:
    runner = CliRunner()
    table = runner.invoke(main, ["migrate", "inventory", str(PERSONS), str(VEHICLES), "--fields"])
    assert table.exit_code == 0, table.output
    assert "GetPersonChanges" in table.output and "Soap12  1.2" in table.output
    assert "Address: AddressType [optional,repeated]" in table.output

    as_json = runner.invoke(main, ["migrate", "inventory", str(PERSONS), str(FIXTURES / "broken" / "malformed.wsdl"),
                                   "--format", "json"])
    assert as_json.exit_code == 1  # one failed, the other is still reported
    data = json.loads(as_json.stdout)
    assert data["totals"] == {"wsdls": 1, "failed": 1, "services": 1, "operations": 2, "complexity": 56}
    assert data["errors"][0]["source"].endswith("malformed.wsdl")
    assert "error: " in as_json.stderr and "malformed.wsdl" in as_json.stderr
    op = data["wsdls"][0]["services"][0]["ports"][0]["operations"][0]
    assert op["name"] == "GetPerson" and op["complexity"] == 23

    as_csv = runner.invoke(main, ["migrate", "inventory", str(BENEFITS), "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(as_csv.stdout)))
    assert [(r["direction"], r["path"], r["xsd_type"]) for r in rows][:3] == [
        ("input", "personCode", "xs:string"), ("input", "year", "xs:int"), ("output", "benefits", "BenefitList")]
    assert {r["style"] for r in rows} == {"rpc"}


def test_the_viss_request_service_wsdl_soap12_only() -> None:
    inventory = read_wsdl(str(ROOT / "viss_bridge" / "facade" / "schemas" / "viss-request-service.wsdl"))
    [service] = inventory.services
    assert [(p.name, p.soap_version) for p in service.ports] == [("RequestServiceSoap12", "1.2")]
    ops = {o.name: o for o in service.operations()}
    assert set(ops) == {"StartTransaction", "SubmitSync", "EndTransaction"}
    rows = {r.path: r for r in ops["SubmitSync"].input.fields}
    assert rows["IVISRequest/Header/MessageID"].depth == 3


def test_soap_header_parts_are_headers_not_body_fields() -> None:
    inventory = read_wsdl(str(FIXTURES / "headers" / "with-headers.wsdl"))
    [op] = inventory.services[0].operations()
    assert (op.input.element, op.input.headers, [r.path for r in op.input.fields]) == ("LicenceRequest", ["Auth"],
                                                                                         ["Number"])
    # a header from another message does not hide the output's own part named like it
    assert (op.output.element, op.output.headers) == ("LicenceResponse", ["Trace"])
    assert [r.path for r in op.output.fields][:2] == ["Licence", "Licence/Number"]
