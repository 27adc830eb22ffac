"""Scaffold: drafts from the project's legacy WSDLs and from a WSDL with imports/includes and SOAP 1.2 load unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.cli import main
from viss_bridge.facade.legacy_contract import load_contract
from viss_bridge.migration.scaffold import snake

ROOT = Path(__file__).resolve().parents[2]
PERSONS = ROOT / "wsdl" / "PMLP-FizPersonas-v1-0.wsdl"
ADDRESSES = ROOT / "wsdl" / "VZD-Adreses-v1-0.wsdl"
VEHICLES = ROOT / "tests" / "fixtures" / "wsdl" / "imports" / "vehicles.wsdl"
BENEFITS = ROOT / "tests" / "fixtures" / "wsdl" / "rpc" / "benefits.wsdl"


def _scaffold(runner: CliRunner, wsdl: Path, out: Path, *extra: str) -> str:
    result = runner.invoke(main, ["migrate", "scaffold", str(wsdl), "-o", str(out), *extra])
    assert result.exit_code == 0, result.output
    return result.output


def _validate(runner: CliRunner, out: Path) -> str:
    result = runner.invoke(main, ["catalog", "validate", str(out)])
    assert result.exit_code == 0, result.output
    return result.output


def test_scaffold_of_the_project_wsdls_validates_and_the_contracts_load(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "drafts"
    printed = _scaffold(runner, PERSONS, out)
    assert "GetPersonChanges: change feed" in printed
    _scaffold(runner, ADDRESSES, out)
    assert "2 dataset(s) valid: pmlp_person, vzd_address" in _validate(runner, out)

    manifest_text = (out / "pmlp_person.yaml").read_text()
    assert manifest_text.count("TODO(decide)") >= 5
    assert "# key: the request of GetPerson (PersonCode -> person_code)" in manifest_text
    catalog = load_catalog(out)
    person = catalog.get("pmlp_person")
    assert person.key == ("person_code",) and person.subject == "person_code"
    assert {f.name: f.type.value for f in person.fields}["birth_date"] == "date"
    addresses = person.field("address")
    assert addresses.type.value == "list" and [f.name for f in addresses.fields] == ["address_code", "address_kind",
                                                                                    "valid_from"]
    assert not person.field("death_date").required and person.field("surname").required
    assert catalog.get("vzd_address").field("latitude").type.value == "decimal"

    for name, operations in (("pmlp-fizpersonas-v1-0", ["GetPerson", "GetPersonChanges"]),
                             ("vzd-adreses-v1-0", ["GetAddress", "GetAddressChanges"])):
        contract = load_contract(out / "legacy" / f"{name}.yaml")  # the format /legacy/<name> reads
        contract.check_against(catalog)
        assert list(contract.operations) == operations
    changes = yaml.safe_load((out / "legacy" / "pmlp-fizpersonas-v1-0.yaml").read_text())["operations"][
        "GetPersonChanges"]
    assert {k: v for k, v in changes.items() if k != "fields"} == {
        "dataset": "pmlp_person", "kind": "changes", "since": "ChangedSince", "after_key": "AfterPersonCode",
        "page_size_element": "PageSize", "page_size": 100, "items": "Change", "record": "Person",
        "changed_at": "ChangedAt", "more": "MoreAvailable"}
    assert "mapped as a 'changes' operation of the same dataset" in printed
    mapping = yaml.safe_load((out / "legacy" / "pmlp-fizpersonas-v1-0.yaml").read_text())
    assert mapping["operations"]["GetPerson"]["request"] == {"PersonCode": "person_code"}
    assert mapping["operations"]["GetPerson"]["fields"]["Address"] == {
        "field": "address", "fields": {"AddressCode": "address_code", "AddressKind": "address_kind",
                                       "ValidFrom": "valid_from"}}

    again = runner.invoke(main, ["migrate", "scaffold", str(PERSONS), "-o", str(out)])
    assert again.exit_code == 1 and "would overwrite" in again.output


def test_scaffold_with_imports_includes_and_soap12_copies_the_schemas(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "drafts"
    _scaffold(runner, VEHICLES, out, "--owner", "LV/GOV/90000000000/CSDD", "--access", "public")
    assert (out / "legacy" / "types" / "common.xsd").is_file()
    assert (out / "legacy" / "types" / "common-parts.xsd").is_file()
    _validate(runner, out)
    vehicle = load_catalog(out).get("csdd_vehicle")
    assert vehicle.owner == "LV/GOV/90000000000/CSDD" and vehicle.access.value == "public"
    assert vehicle.key == ("registration_number",)
    # the nested address and the attribute are carried too (issue 11), nothing is left out
    owner = vehicle.field("owner")
    inner = {f.name: f for f in owner.fields}
    assert list(inner) == ["code", "name", "share", "address", "kind"]
    assert inner["address"].type.value == "object" and inner["kind"].xml == "attribute"
    assert {f.name: f for f in inner["address"].fields}["line"].items.value == "string"  # maxOccurs=3 values
    mapping = (out / "legacy" / "csdd-transportlidzekli-v1-0.yaml").read_text()
    assert "# NOTE: request element AsOf names no field of the record; the bridge ignores it" in mapping
    load_contract(out / "legacy" / "csdd-transportlidzekli-v1-0.yaml").check_against(load_catalog(out))


def test_scaffold_with_a_provider_gives_a_legacy_soap_source_with_the_change_feed(tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "drafts"
    _scaffold(runner, PERSONS, out, "--provider-url", "http://127.0.0.1:8091/ivis/FizPersonas/v1-0",
              "--mode", "replicated", "--consumer", "LV/GOV/90000069281/VID-EDS", "--name", "persons")
    _validate(runner, out)
    source = load_catalog(out).get("pmlp_person").source.model_dump()
    assert source["kind"] == "legacy_soap" and source["mode"] == "replicated"
    assert source["changes"]["operation"] == "GetPersonChanges" and source["changes"]["record"] == "Person"
    assert yaml.safe_load((out / "legacy" / "persons.yaml").read_text())["consumer"] == "LV/GOV/90000069281/VID-EDS"


def test_rpc_services_are_refused_with_the_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["migrate", "scaffold", str(BENEFITS), "-o", str(tmp_path)])
    assert result.exit_code == 1 and "rpc style" in result.output


@pytest.mark.parametrize("legacy, field", [("GivenName", "given_name"), ("AtvkCode", "atvk_code"),
                                           ("personCode", "person_code"), ("URLAddress", "url_address"),
                                           ("9lives", "f_9lives")])
def test_snake_case_names(legacy: str, field: str) -> None:
    assert snake(legacy) == field


def test_a_contract_name_the_bridge_cannot_serve_is_refused(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["migrate", "scaffold", str(PERSONS), "-o", str(tmp_path), "--name", "Persons/1"])
    assert result.exit_code == 1 and "cannot name a /legacy contract" in result.output


def test_scaffold_record_tracks_the_service(tmp_path: Path) -> None:
    runner = CliRunner(env={"VISS_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'm.sqlite'}"})
    _scaffold(runner, ADDRESSES, tmp_path / "drafts", "--record")
    status = runner.invoke(main, ["migrate", "status"])
    assert "VZD/Adreses/v1-0" in status.output and "inventoried" in status.output
