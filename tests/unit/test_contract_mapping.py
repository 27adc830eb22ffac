"""Legacy contract mapping files: validated against the original WSDL and the catalog, errors with file+line."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.catalog.manifest import ManifestError
from viss_bridge.demo.world import DEMO_CATALOG_DIR
from viss_bridge.facade.legacy_contract import load_contract

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "viss_bridge" / "demo" / "contracts" / "fpr.yaml"


def _contract(tmp_path: Path, change) -> Path:  # type: ignore[no-untyped-def]
    data = yaml.safe_load(SHIPPED.read_text())
    data["wsdl"] = str(ROOT / "wsdl" / "PMLP-FizPersonas-v1-0.wsdl")
    change(data)
    path = tmp_path / "fpr.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))
    return path


def test_shipped_contract_is_valid(tmp_path: Path) -> None:
    contract = load_contract(_contract(tmp_path, lambda d: None))
    contract.check_against(load_catalog(DEMO_CATALOG_DIR))
    assert set(contract.operations) == {"GetPerson", "GetPersonChanges"}


@pytest.mark.parametrize("change, field, message", [
    (lambda d: d["operations"].update(GetPersons=d["operations"].pop("GetPerson")), "operations.GetPersons",
     "has no operation GetPersons"),
    (lambda d: d["operations"]["GetPerson"].update(response="Persons"), "operations.GetPerson.response",
     "has no child Persons"),
    (lambda d: d["operations"]["GetPerson"]["request"].update(Code="person_code"), "operations.GetPerson.request.Code",
     "has no child Code"),
    (lambda d: d["operations"]["GetPersonChanges"].update(record="Human"), "operations.GetPersonChanges.record",
     "has no child Human"),
    (lambda d: d["operations"]["GetPerson"].pop("response"), "operations.GetPerson", "needs 'request'"),
    (lambda d: d.update(wsdl_file="x"), "wsdl_file", "unknown key"),
])
def test_mapping_errors_name_file_line_and_key(tmp_path: Path, change, field, message) -> None:  # type: ignore[no-untyped-def]
    path = _contract(tmp_path, change)
    with pytest.raises(ManifestError) as caught:
        load_contract(path)
    assert caught.value.field == field, str(caught.value)
    assert message in caught.value.reason, str(caught.value)
    assert caught.value.line and str(path) in str(caught.value)


@pytest.mark.parametrize("change, field, message", [
    (lambda d: d["operations"]["GetPerson"].update(dataset="fpr_persons"), "operations.GetPerson.dataset", "no dataset"),
    (lambda d: d["operations"]["GetPerson"]["fields"].update(GivenName="given_name"),
     "operations.GetPerson.fields.GivenName", "not a dataset field"),
    (lambda d: d["operations"]["GetPerson"]["request"].update(PersonCode="last_name"),
     "operations.GetPerson.request.PersonCode", "not a key field"),
])
def test_mapping_checked_against_the_catalog(tmp_path: Path, change, field, message) -> None:  # type: ignore[no-untyped-def]
    contract = load_contract(_contract(tmp_path, change))
    with pytest.raises(ManifestError) as caught:
        contract.check_against(load_catalog(DEMO_CATALOG_DIR))
    assert caught.value.field == field, str(caught.value)
    assert message in caught.value.reason
    assert caught.value.line
