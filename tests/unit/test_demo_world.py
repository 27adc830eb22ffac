"""The demo world: valid identifiers, determinism, integrity, and records that fit their manifests.

The manifests are read here with plain PyYAML on purpose: these tests pin the
generator to the YAML files themselves, independently of the catalog loader.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
import yaml

from viss_bridge.demo.identifiers import (
    address_code,
    birth_date_from_personal_code,
    company_reg_number,
    is_valid_address_code,
    is_valid_company_reg_number,
    is_valid_personal_code,
    personal_code,
    personal_code_check_digit,
)
from viss_bridge.demo.world import (
    DATASETS,
    DEMO_CATALOG_DIR,
    REFERENCE_DATE,
    address_count,
    company_count,
    generate_world,
    iter_addresses,
    iter_persons,
)

PYTHON_TYPES: dict[str, type | tuple[type, ...]] = {
    "string": str,
    "integer": int,
    "decimal": Decimal,
    "boolean": bool,
    "date": dt.date,
    "datetime": dt.datetime,
    "list": list,
    "object": dict,
}


@pytest.fixture(scope="module")
def world() -> dict[str, list[dict[str, Any]]]:
    return generate_world()


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict[str, Any]]:
    result = {}
    for path in sorted(DEMO_CATALOG_DIR.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        assert data["dataset"] == path.stem
        result[data["dataset"]] = data
    return result


# -- identifiers ------------------------------------------------------------


def test_personal_code_check_digit_on_known_codes() -> None:
    # 1*1+6*6+1*3+1*7+7*9+5*10+1*5+9*8+9*4+9*2 = 291; (1101 - 291) % 11 = 7
    assert is_valid_personal_code("161175-19997")
    assert is_valid_personal_code("16117519997")
    assert not is_valid_personal_code("161175-19996")  # wrong check digit
    assert not is_valid_personal_code("161375-19997")  # month 13
    assert not is_valid_personal_code("290223-20000")  # 29 February 2023 does not exist
    assert not is_valid_personal_code("161175-1999")
    assert not is_valid_personal_code("161175+19997")
    assert not is_valid_personal_code("1611751999٧")  # non-ASCII digit


def test_personal_code_built_from_date_and_serial() -> None:
    assert personal_code(dt.date(1975, 11, 16), 999) == "161175-19997"
    code = personal_code(dt.date(2003, 9, 22), 242)
    assert code == "220903-22422" and is_valid_personal_code(code)
    assert birth_date_from_personal_code(code) == dt.date(2003, 9, 22)
    assert personal_code(dt.date(1899, 12, 31), 0) is not None  # century digit 0
    with pytest.raises(ValueError):
        personal_code(dt.date(1975, 11, 16), 1000)


def test_serials_whose_check_would_be_ten_are_skipped() -> None:
    birth = dt.date(1980, 1, 1)
    skipped = [s for s in range(1000) if personal_code(birth, s) is None]
    assert 0 < len(skipped) < 200  # about one in eleven
    for serial in skipped:
        first_ten = f"0101801{serial:03d}"
        assert personal_code_check_digit(first_ten) is None
        # No final digit makes such a code valid.
        assert not any(is_valid_personal_code(first_ten + str(d)) for d in range(10))


def test_new_format_personal_code() -> None:
    assert is_valid_personal_code("328673-00679")
    assert not is_valid_personal_code("328673-00677")
    assert birth_date_from_personal_code("328673-00679") is None


def test_company_reg_numbers() -> None:
    # 4*9+3*3+5*10+2*2+1*5+6*7 = 146; 146 % 11 == 3
    assert is_valid_company_reg_number("40003521600")
    assert not is_valid_company_reg_number("40003521601")
    assert not is_valid_company_reg_number("30003521600")  # personal range
    assert company_reg_number(52160, "40003") == "40003521600"
    made = [company_reg_number(s, "50003") for s in range(200)]
    assert all(is_valid_company_reg_number(n) for n in made if n is not None)
    assert made.count(None) > 0


def test_address_codes_unique_and_well_formed() -> None:
    codes = [address_code(i, 12345) for i in range(20_000)]
    assert len(set(codes)) == len(codes)
    assert all(is_valid_address_code(c) for c in codes)
    assert address_code(0, 1) != address_code(0, 2)
    assert not is_valid_address_code("201234567")


# -- determinism --------------------------------------------------------------


def test_same_seed_same_world(world: dict[str, list[dict[str, Any]]]) -> None:
    assert generate_world() == world
    assert generate_world(200, 2026) == world


def test_different_seed_different_world(world: dict[str, list[dict[str, Any]]]) -> None:
    other = generate_world(200, 7)
    for name in DATASETS:
        assert other[name] != world[name]


def test_streams_match_generate_world(world: dict[str, list[dict[str, Any]]]) -> None:
    assert list(iter_persons(200, 2026)) == world["fpr_person"]
    assert list(iter_addresses(200, 2026)) == world["vzd_address"]


# -- shape ------------------------------------------------------------------


def test_catalog_has_every_dataset(manifests: dict[str, dict[str, Any]]) -> None:
    assert set(manifests) == set(DATASETS)
    def described(where: str, fields: list[dict[str, Any]]) -> None:
        for f in fields:
            assert f.get("description"), f"{where}.{f['name']} lacks a description"
            described(f"{where}.{f['name']}", f.get("fields", []))

    for m in manifests.values():
        described(m["dataset"], m["fields"])


def _check_record(where: str, fields: list[dict[str, Any]], record: dict[str, Any], key: list[str]) -> None:
    assert set(record) == {f["name"] for f in fields}, where
    for f in fields:
        value = record[f["name"]]
        if value is None:
            assert not f.get("required") and f["name"] not in key, f"{where}.{f['name']} is required"
            continue
        expected = PYTHON_TYPES[f["type"]]
        if f["type"] == "date":
            assert type(value) is dt.date, f"{where}.{f['name']}: {value!r}"
        elif f["type"] == "integer":
            assert type(value) is int, f"{where}.{f['name']}: {value!r}"
        else:
            assert isinstance(value, expected), f"{where}.{f['name']}: {value!r}"
        if f["type"] == "datetime":
            assert value.tzinfo is not None, f"{where}.{f['name']} must be timezone-aware"
        if f["type"] == "string" and "max_length" in f:
            assert len(value) <= f["max_length"], f"{where}.{f['name']}: {value!r}"
        if f.get("enum"):
            assert value in f["enum"], f"{where}.{f['name']}: {value!r}"
        if f["type"] == "object":
            _check_record(f"{where}.{f['name']}", f["fields"], value, [])
        if f["type"] == "list" and "items" in f:
            item = {k: v for k, v in f.items() if k not in ("items", "type")} | {"type": f["items"], "required": True}
            for i, element in enumerate(value):
                _check_record(f"{where}.{f['name']}[{i}]", [item], {f["name"]: element}, [])
        elif f["type"] == "list":
            for i, item in enumerate(value):
                _check_record(f"{where}.{f['name']}[{i}]", f["fields"], item, [])


def test_records_have_exactly_the_manifest_fields(
    world: dict[str, list[dict[str, Any]]], manifests: dict[str, dict[str, Any]]
) -> None:
    assert set(world) == set(DATASETS)
    for name, records in world.items():
        assert records, name
        m = manifests[name]
        for i, record in enumerate(records):
            _check_record(f"{name}[{i}]", m["fields"], record, m["key"])


def test_keys_unique(world: dict[str, list[dict[str, Any]]], manifests: dict[str, dict[str, Any]]) -> None:
    for name, records in world.items():
        keys = [tuple(r[k] for k in manifests[name]["key"]) for r in records]
        assert len(set(keys)) == len(keys), name


def test_sizes() -> None:
    w = generate_world(1000, 3)
    assert len(w["fpr_person"]) == 1000
    assert len(w["vzd_address"]) == address_count(1000) == 600
    assert len(w["ur_company"]) == company_count(1000) == 100
    adults = [p for p in w["fpr_person"] if (REFERENCE_DATE - p["birth_date"]).days >= 18 * 366]
    assert 0.7 * len(adults) <= len(w["viis_education"]) <= 0.9 * len(adults)
    tiny = generate_world(1, 1)
    assert len(tiny["vzd_address"]) == 20 and len(tiny["ur_company"]) == 5


# -- content ------------------------------------------------------------------


def test_personal_codes_valid_unique_and_match_birth_date() -> None:
    persons = list(iter_persons(20_000, 11))
    codes = [p["person_code"] for p in persons]
    assert len(set(codes)) == len(codes)
    for p in persons:
        assert is_valid_personal_code(p["person_code"]), p["person_code"]
        assert birth_date_from_personal_code(p["person_code"]) == p["birth_date"]


def test_persons_are_plausible(world: dict[str, list[dict[str, Any]]]) -> None:
    persons = world["fpr_person"]
    for p in persons:
        age = (REFERENCE_DATE - p["birth_date"]).days / 365.2425
        assert 0 <= age < 96
        assert p["gender"] in ("M", "F")
        if p["gender"] == "M":
            assert p["last_name"].endswith(("s", "š")), p["last_name"]
        else:
            assert p["last_name"].endswith(("a", "e")), p["last_name"]
        assert (p["status"] == "deceased") == (p["death_date"] is not None)
        if p["death_date"]:
            assert p["birth_date"] <= p["death_date"] < REFERENCE_DATE
        assert p["declared_address_code"] == p["addresses"][0]["address_code"]
        assert p["addresses"][0]["kind"] == "declared"
        for a in p["addresses"]:
            assert p["birth_date"] <= a["valid_from"] <= (p["death_date"] or REFERENCE_DATE)
    dead = sum(p["status"] == "deceased" for p in iter_persons(20_000, 5))
    assert 200 <= dead <= 600  # about 2 %


def test_referential_integrity(world: dict[str, list[dict[str, Any]]]) -> None:
    addresses = {a["address_code"] for a in world["vzd_address"]}
    persons = {p["person_code"]: p for p in world["fpr_person"]}
    companies = {c["reg_number"]: c for c in world["ur_company"]}
    for p in world["fpr_person"]:
        assert p["declared_address_code"] in addresses
        assert {a["address_code"] for a in p["addresses"]} <= addresses
    for c in world["ur_company"]:
        assert is_valid_company_reg_number(c["reg_number"])
        assert c["address_code"] in addresses
        assert c["registered"] < REFERENCE_DATE
        for o in c["officers"]:
            officer = persons[o["person_code"]]
            assert o["since"] >= c["registered"]
            assert (o["since"] - officer["birth_date"]).days >= 18 * 365
    for e in world["viis_education"]:
        holder = persons[e["person_code"]]
        for d in e["documents"]:
            assert holder["birth_date"] < d["issued"] < REFERENCE_DATE
    for s in world["vsaa_social_insurance"]:
        assert s["person_code"] in persons
        for period in s["periods"]:
            employer = companies[period["employer_reg_number"]]
            assert employer["registered"] <= period["from_date"]
            assert period["to_date"] is None or period["from_date"] <= period["to_date"] < REFERENCE_DATE
        assert s["insured"] == (s["insurance_status"] != "not insured")


def test_addresses_are_distinct_and_latvian(world: dict[str, list[dict[str, Any]]]) -> None:
    addresses = world["vzd_address"]
    assert len({a["full_address"] for a in addresses}) == len(addresses)
    for a in addresses:
        assert is_valid_address_code(a["address_code"])
        assert a["postal_code"].startswith("LV-") and 1001 <= int(a["postal_code"][3:]) <= 5799
        assert a["full_address"].startswith(f"{a['street']} {a['house']}")
        assert a["full_address"].endswith(a["postal_code"])
        assert Decimal("55.6") < a["latitude"] < Decimal("58.1")
        assert Decimal("20.9") < a["longitude"] < Decimal("28.3")
        assert len(a["atvk_code"]) == 7 and a["atvk_code"].isdigit()
    assert any(a["city"] == "Rīga" for a in addresses)


def test_vehicles_belong_to_living_adults_of_the_world(world: dict[str, list[dict[str, Any]]]) -> None:
    """csdd_vehicle: keepers and owners are persons of fpr_person; plates (current and previous) are unique."""
    persons = {p["person_code"]: p for p in world["fpr_person"]}
    vehicles = world["csdd_vehicle"]
    assert len(vehicles) >= 20
    plates = [v["plate"] for v in vehicles] + [p for v in vehicles for p in v["previous_plates"]]
    assert len(set(plates)) == len(plates)
    assert len({v["vin"] for v in vehicles}) == len(vehicles)
    for v in vehicles:
        assert v["owners"][0]["person_code"] == v["holder_code"]
        assert sum(o["share"] for o in v["owners"]) == 1
        for owner in v["owners"]:
            person = persons[owner["person_code"]]
            assert person["status"] == "active" and owner["from"] >= v["first_registered"]
    # the demo shows every construct: co-owners, contacts, a nil power, previous plates
    assert any(len(v["owners"]) >= 2 for v in vehicles)
    assert any(o["contacts"] for v in vehicles for o in v["owners"])
    assert any(v["technical"]["power_kw"] is None for v in vehicles)
    assert any(v["previous_plates"] for v in vehicles)
