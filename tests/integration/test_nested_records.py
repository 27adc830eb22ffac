"""Objects, lists of objects inside lists, lists of values, enums and nil values over real HTTP.

The demo dataset ``csdd_vehicle`` uses every construct of the data model; a zeep client built
from the served WSDLs must read it back exactly as the generator made it, on /xroad and /catalog,
and the WSDLs must declare the enumerations and nil values, so generated clients get them typed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
from lxml import etree

from tests.conftest import DEMO_CONSUMER, cli
from tests.soap_helpers import normalise, post, xroad_headers, xroad_lookup

XS = "http://www.w3.org/2001/XMLSchema"
XSI = "http://www.w3.org/2001/XMLSchema-instance"


def _richest(vehicles: list[dict[str, Any]]) -> dict[str, Any]:
    """A vehicle with co-owners, an owner's contacts and previous plates (every nested construct filled)."""
    return next(v for v in vehicles if len(v["owners"]) >= 2 and any(o["contacts"] for o in v["owners"])
                and v["previous_plates"])


@pytest.fixture(scope="module")
def xroad_client(bridge):  # type: ignore[no-untyped-def]
    return zeep.Client(f"{bridge.xroad}?wsdl")


@pytest.fixture(scope="module")
def catalog_client(bridge):  # type: ignore[no-untyped-def]
    return zeep.Client(f"{bridge.catalog}?wsdl")


def test_xroad_reads_nested_values_equal_to_the_generator(xroad_client, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    dataset = demo_catalog.get("csdd_vehicle")
    for expected in (_richest(demo_world["csdd_vehicle"]),
                     next(v for v in demo_world["csdd_vehicle"] if v["technical"]["power_kw"] is None)):
        answer = xroad_client.service.csdd_vehicle(plate=expected["plate"],
                                                   _soapheaders=xroad_headers(DEMO_CONSUMER, dataset))
        record = answer.body.record
        assert normalise(record) == normalise(expected)
        # typed, not text: a list of strings is a Python list, the nested object an object
        assert record.previous_plates == expected["previous_plates"]
        assert record.owners[0]["from"] == expected["owners"][0]["from"]
        assert record.technical.fuel == expected["technical"]["fuel"]


def test_a_nillable_value_without_a_value_is_sent_as_xsi_nil(bridge, demo_catalog, demo_world):  # type: ignore[no-untyped-def]
    dataset = demo_catalog.get("csdd_vehicle")
    vehicle = next(v for v in demo_world["csdd_vehicle"] if v["technical"]["power_kw"] is None)
    response = post(bridge.xroad, xroad_lookup(dataset, DEMO_CONSUMER, {"plate": vehicle["plate"]}))
    assert response.status_code == 200, response.text
    power = etree.fromstring(response.content).find(".//{*}technical/{*}power_kw")
    assert power is not None and power.get(f"{{{XSI}}}nil") == "true"


def test_catalog_get_record_returns_the_same_nested_values(catalog_client, demo_world):  # type: ignore[no-untyped-def]
    expected = _richest(demo_world["csdd_vehicle"])
    answer = catalog_client.service.getRecord(dataset="csdd_vehicle", key=[expected["plate"]],
                                              _soapheaders={"caller": {"client": DEMO_CONSUMER}})
    assert normalise(answer.csdd_vehicle) == normalise(expected)


def test_describe_dataset_describes_nested_fields_at_every_depth(catalog_client):  # type: ignore[no-untyped-def]
    description = catalog_client.service.describeDataset(dataset="csdd_vehicle")
    fields = {f.name: f for f in description.field}
    technical = {f.name: f for f in fields["technical"].field}
    assert fields["technical"].type == "object"
    assert technical["fuel"].enumValue == ["petrol", "diesel", "electric", "hybrid", "lpg"]
    assert technical["power_kw"].nillable is True
    owners = {f.name: f for f in fields["owners"].field}
    contacts = {f.name: f for f in owners["contacts"].field}
    assert owners["contacts"].type == "list" and contacts["kind"].enumValue == ["phone", "email"]
    assert fields["previous_plates"].type == "list" and fields["previous_plates"].items == "string"
    assert fields["previous_plates"].maxLength == 8


@pytest.mark.parametrize("face", ["xroad", "catalog"])
def test_wsdl_declares_enumerations_nil_values_and_repeated_values(face: str, bridge) -> None:  # type: ignore[no-untyped-def]
    wsdl = etree.fromstring(requests.get(f"{bridge.url}/{face}?wsdl", timeout=10).content)
    assert "anyType" not in etree.tostring(wsdl).decode()

    def element(type_name: str, name: str) -> etree._Element:
        found = wsdl.find(f".//{{{XS}}}complexType[@name='{type_name}']//{{{XS}}}element[@name='{name}']")
        assert found is not None, (type_name, name)
        return found

    fuel = element("csdd_vehicle_technical", "fuel")
    simple = wsdl.find(f".//{{{XS}}}simpleType[@name='{fuel.get('type').split(':')[1]}']")
    assert [e.get("value") for e in simple.iter(f"{{{XS}}}enumeration")] == [
        "petrol", "diesel", "electric", "hybrid", "lpg"]
    power = element("csdd_vehicle_technical", "power_kw")
    assert power.get("nillable") == "true" and power.get("type").endswith(":long")
    plates = element("csdd_vehicle_record", "previous_plates")
    assert plates.get("maxOccurs") == "unbounded"
    contacts = element("csdd_vehicle_owners", "contacts")
    assert contacts.get("maxOccurs") == "unbounded" and contacts.get("type").endswith(":csdd_vehicle_owners_contacts")
    technical = element("csdd_vehicle_record", "technical")
    assert technical.get("maxOccurs") in (None, "1")


def test_catalog_load_refuses_a_value_outside_its_enum_naming_file_line_and_field(bridge, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                                                  demo_world):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    shutil.copyfile(bridge.catalog_dir / "csdd_vehicle.yaml", catalog / "csdd_vehicle.yaml")
    env = {"VISS_BRIDGE_CATALOG_DIR": str(catalog), "VISS_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite'}"}
    vehicles = [json.loads(json.dumps(v, default=str)) for v in demo_world["csdd_vehicle"][:3]]
    vehicles[1]["technical"]["fuel"] = "coal"
    rows = tmp_path / "vehicles.jsonl"
    rows.write_text("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in vehicles), encoding="utf-8")
    refused = cli("catalog", "load", "csdd_vehicle", str(rows), env=env, check=False)
    assert refused.returncode != 0
    assert f"{rows}:2:" in refused.stderr and "technical.fuel" in refused.stderr and "coal" in refused.stderr
    vehicles[1]["technical"]["fuel"] = "diesel"
    vehicles[2]["owners"][0]["contacts"] = [{"kind": "fax", "value": "+371 67000000"}]
    rows.write_text("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in vehicles), encoding="utf-8")
    refused = cli("catalog", "load", "csdd_vehicle", str(rows), env=env, check=False)
    assert f"{rows}:3:" in refused.stderr and "owners[0].contacts[0].kind" in refused.stderr
    vehicles[2]["owners"][0]["contacts"] = []
    rows.write_text("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in vehicles), encoding="utf-8")
    assert "3 record(s) loaded" in cli("catalog", "load", "csdd_vehicle", str(rows), env=env).stdout


INSPECTIONS = """\
dataset: csdd_inspection
title: {lv: "Tehniskās apskates", en: "Roadworthiness tests"}
owner: LV/GOV/40003345986/CSDD
key: [plate]
access: open
fields:
  - {name: plate, type: string, required: true}
  - name: mass
    type: object
    fields:
      - {name: value, type: decimal, required: true, xml: text}
      - {name: unit, type: string, required: true, xml: attribute, enum: [kg, t]}
  - name: tests
    type: list
    fields:
      - {name: station, type: string, xml: attribute}
      - {name: passed, type: boolean}
"""


@pytest.fixture(scope="module")
def attribute_bridge(tmp_path_factory):  # type: ignore[no-untyped-def]
    from tests.conftest import start_bridge

    running = start_bridge(tmp_path_factory.mktemp("attributes"), workers=1)
    yield running
    running.stop()


def test_attributes_and_text_content_are_served_typed(attribute_bridge, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """``<mass unit="kg">1385.5</mass>``: one stored object, an xs:attribute and simple content in the WSDL."""
    import time

    (attribute_bridge.catalog_dir / "csdd_inspection.yaml").write_text(INSPECTIONS, encoding="utf-8")
    rows = tmp_path / "inspections.jsonl"
    rows.write_text(json.dumps({"plate": "KA1234", "mass": {"value": "1385.5", "unit": "kg"},
                                "tests": [{"station": "Rīga, Bukulti", "passed": True}, {"passed": False}]}) + "\n",
                    encoding="utf-8")
    cli("catalog", "load", "csdd_inspection", str(rows), env=attribute_bridge.env())
    deadline = time.monotonic() + 20
    while b"csdd_inspection" not in requests.get(f"{attribute_bridge.xroad}?wsdl", timeout=5).content:
        assert time.monotonic() < deadline, "the manifest was not published"
        time.sleep(0.2)
    wsdl = etree.fromstring(requests.get(f"{attribute_bridge.xroad}?wsdl", timeout=5).content)
    mass = wsdl.find(f".//{{{XS}}}complexType[@name='csdd_inspection_mass']")
    assert mass.find(f"{{{XS}}}simpleContent/{{{XS}}}extension").get("base") == "xs:decimal"
    unit = mass.find(f".//{{{XS}}}attribute[@name='unit']")
    assert unit is not None and unit.get("use") == "required"
    unit_type = wsdl.find(f".//{{{XS}}}simpleType[@name='{unit.get('type').split(':')[1]}']")
    assert [e.get("value") for e in unit_type.iter(f"{{{XS}}}enumeration")] == ["kg", "t"]

    from viss_bridge.catalog.catalog import load_catalog

    dataset = load_catalog(attribute_bridge.catalog_dir).get("csdd_inspection")
    raw = post(attribute_bridge.xroad, xroad_lookup(dataset, DEMO_CONSUMER, {"plate": "KA1234"}))
    assert raw.status_code == 200, raw.text
    element = etree.fromstring(raw.content).find(".//{*}record/{*}mass")
    assert (element.get("unit"), element.text, len(element)) == ("kg", "1385.5", 0)
    stations = [t.get("station") for t in etree.fromstring(raw.content).iterfind(".//{*}record/{*}tests")]
    assert stations == ["Rīga, Bukulti", None]

    client = zeep.Client(f"{attribute_bridge.xroad}?wsdl")
    record = client.service.csdd_inspection(plate="KA1234", _soapheaders=xroad_headers(DEMO_CONSUMER, dataset)).body.record
    assert record.mass.unit == "kg" and record.mass._value_1 == __import__("decimal").Decimal("1385.5")
    assert [(t.station, t.passed) for t in record.tests] == [("Rīga, Bukulti", True), (None, False)]
    native = zeep.Client(f"{attribute_bridge.catalog}?wsdl")
    description = {f.name: f for f in native.service.describeDataset(dataset="csdd_inspection").field}
    assert [(f.name, f.xml) for f in description["mass"].field] == [("value", "text"), ("unit", "attribute")]
