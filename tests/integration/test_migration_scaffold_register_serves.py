"""Drafts of the register fixture (tests/fixtures/wsdl/register/), unedited, load and serve: a bridge answers
every operation of the original WSDL with every nested value, attribute, simple content and list of the
records loaded into the drafted dataset, and its answers validate against the original schemas."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path


from tests.conftest import DEMO_CONSUMER, cli, start_bridge
from tests.integration.test_legacy_csdd import Client
from tests.legacy_helpers import schema_check

ROOT = Path(__file__).resolve().parents[2]
REGISTER = ROOT / "tests" / "fixtures" / "wsdl" / "register" / "transport.wsdl"
KEEPER = "010101-12345"
RECORDS = [
    {"plate": "AB1234", "vin": "VIN0000000000001", "keeper_code": KEEPER, "first_registered": "2020-01-02",
     "technical": {"mass": "1385.5", "fuel": "diesel", "power_kw": None, "engine_volume": 1968},
     "odometer": {"value": 120000, "unit": "km"},
     "owners": [{"person_code": KEEPER, "share": "0.5", "kind": "natural",
                 "address": {"line": ["Brīvības iela 1-2", "LV-1010"], "city": "Rīga"},
                 "contact": [{"value": "+371 20000000", "kind": "phone"}, {"value": "a@b.lv", "kind": "email"}]},
                {"person_code": "020202-22222", "kind": "natural"}],
     "previous_plates": ["XY9999"], "remark": ["imported", "repainted"], "record_version": 3},
    {"plate": "CD5678", "vin": "VIN0000000000002", "keeper_code": KEEPER, "first_registered": "2023-05-06",
     "technical": {"mass": "2000", "fuel": "electric", "power_kw": 150, "battery_kwh": "75.5"},
     "owners": [{"person_code": KEEPER, "kind": "legal"}], "previous_plates": [], "remark": []},
]


def test_unedited_drafts_serve_every_nested_value(tmp_path: Path) -> None:
    drafts = tmp_path / "drafts"
    cli("migrate", "scaffold", str(REGISTER), "-o", str(drafts), "--consumer", DEMO_CONSUMER,
        "--consumer-network", "127.0.0.0/8")
    records = tmp_path / "vehicles.jsonl"
    records.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    bridge = start_bridge(tmp_path / "bridge", workers=1, extra_env={"VISS_BRIDGE_CATALOG_DIR": str(drafts)})
    try:
        env = dict(bridge.env(), VISS_BRIDGE_CATALOG_DIR=str(drafts))
        cli("catalog", "load", "tlr_vehicle", str(records), env=env)
        cli("clients", "grant", DEMO_CONSUMER, "tlr_vehicle", env=env)
        client = Client(str(REGISTER), f"{bridge.url}/legacy/tlr-registrs-v2-0")

        answer = client.call("GetVehicle", Plate="AB1234")
        assert answer["ResultCode"] == 0 and answer["ResultText"] is None
        vehicle = answer["Vehicle"]
        assert vehicle["recordVersion"] == 3 and vehicle["Remark"] == ["imported", "repainted"]
        assert vehicle["Technical"] == {"Mass": {"_value_1": Decimal("1385.5"), "unit": "kg"}, "Fuel": "diesel",
                                        "PowerKw": None, "EngineVolume": 1968, "BatteryKwh": None}
        assert vehicle["Odometer"] == {"_value_1": 120000, "unit": "km"}
        first, second = vehicle["Owners"]["Owner"]
        assert (first["kind"], first["Share"], second["Share"]) == ("natural", Decimal("0.5"), None)
        assert first["Address"] == {"Line": ["Brīvības iela 1-2", "LV-1010"], "City": "Rīga", "Parish": None}
        assert first["Contact"] == [{"_value_1": "+371 20000000", "kind": "phone"},
                                    {"_value_1": "a@b.lv", "kind": "email"}]
        assert vehicle["PreviousPlates"] == {"Plate": ["XY9999"]}
        assert client.call("GetVehicle", Plate="ZZ0000") == {"ResultCode": 1, "ResultText": "Vehicle not found",
                                                            "Vehicle": None}

        by_vin = client.call("GetVehicleByVin", Vin="VIN0000000000002")
        assert by_vin["Vehicle"]["Technical"]["BatteryKwh"] == Decimal("75.5")
        assert by_vin["Vehicle"]["Odometer"] is None
        assert b"PreviousPlates/>" in client.answers[-1]  # the required wrapper, empty (zeep reads it as None)
        assert client.call("GetVehicleByVin", Vin="NOSUCH")[:2] == ("fault", "Client.VehicleNotFound")

        found = client.call("FindVehicles", OwnerPersonCode=KEEPER)
        assert (found["ResultCode"], found["Total"], found["PageNumber"], found["MoreAvailable"]) == (0, 2, 1, False)
        assert [v["Plate"] for v in found["Vehicles"]["Vehicle"]] == ["AB1234", "CD5678"]
        page = client.call("FindVehicles", OwnerPersonCode=KEEPER, PageSize=1, PageNumber=2)
        assert [v["Plate"] for v in page["Vehicles"]["Vehicle"]] == ["CD5678"] and page["Total"] == 2
        electric = client.call("FindVehicles", OwnerPersonCode="020202-22222", Fuel="electric")
        assert electric["ResultCode"] == 1 and electric["Total"] == 0
        check = schema_check(REGISTER)
        for raw in client.answers:
            check(raw)
    finally:
        bridge.stop()


