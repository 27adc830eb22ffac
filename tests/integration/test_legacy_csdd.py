"""/legacy/csdd over real HTTP: the CSDD vehicle register's original contract, whole.

Clients generated from the ORIGINAL WSDL file (whose messages are in an imported XSD that includes
another) and from ``/legacy/csdd?wsdl`` (whose schemas come from ``?xsd=``) call every operation at
the bridge; the answers equal the demo provider's (which renders the WSDL natively, independently of
the mapping) and validate against the original schema, not-found answers and faults included.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Iterator

import pytest
import requests
import yaml
import zeep
from lxml import etree
from zeep.plugins import HistoryPlugin

from tests.conftest import DEMO_CONSUMER, RunningBridge, cli, start_bridge
from tests.legacy_helpers import ROOT, plain, schema_check
from tests.soap_helpers import parse_fault, post
from viss_bridge.demo.legacy_providers import ProviderServer, start_provider

VEHICLES_WSDL = ROOT / "wsdl" / "CSDD-Transportlidzekli-v1-0.wsdl"
TNS = "http://ivis.eps.gov.lv/XMLSchemas/CSDD/Transportlidzekli/v1-0"
FLEET_OWNER = "220903-22422"  # the world's first adult: co-owns about one vehicle in five
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


@pytest.fixture(scope="module")
def vehicles_provider() -> Iterator[ProviderServer]:
    provider = start_provider("vehicles", size=200)
    yield provider
    provider.stop()


class Client:
    """A zeep service for one address, keeping the raw answers to validate them against the schema."""

    def __init__(self, wsdl: str, address: str | None = None) -> None:
        self.history = HistoryPlugin(maxlen=1)
        client = zeep.Client(wsdl, plugins=[self.history])
        if address is None:
            self.service = client.service
        else:
            binding = next(iter(next(iter(client.wsdl.services.values())).ports.values())).binding
            self.service = client.create_service(binding.name, address)
        self.answers: list[bytes] = []

    def call(self, operation: str, **arguments: Any) -> Any:
        """The answer as plain values, or ('fault', code, message)."""
        try:
            result = plain(getattr(self.service, operation)(**arguments))
        except zeep.exceptions.Fault as fault:
            result = ("fault", fault.code, fault.message)
        self.answers.append(etree.tostring(self.history.last_received["envelope"]))
        return result


def _vehicles(demo_world) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return demo_world["csdd_vehicle"]


def _every_operation(client: Client, demo_world) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Every operation of the WSDL, with found, not-found and edge values."""
    vehicles = _vehicles(demo_world)
    nil_power = next(v for v in vehicles if v["technical"]["power_kw"] is None)
    leased = next(v for v in vehicles if len(v["holders"]) > 1)
    plates = next(v for v in vehicles if v["previous_plates"])
    answers: dict[str, Any] = {}
    for vehicle in (vehicles[0], nil_power, leased, plates):
        answers[f"plate {vehicle['plate']}"] = client.call("GetVehicleByPlate", PlateNumber=vehicle["plate"])
        answers[f"vin {vehicle['vin']}"] = client.call("GetVehicleByVin", Vin=vehicle["vin"])
    answers["plate unknown"] = client.call("GetVehicleByPlate", PlateNumber="ZZ0000")
    answers["plate empty"] = client.call("GetVehicleByPlate", PlateNumber="")
    answers["vin unknown"] = client.call("GetVehicleByVin", Vin="NOSUCHVIN00000000")
    answers["owner pages"] = _walk(client, FLEET_OWNER, page_size=4)
    answers["owner fuel"] = client.call("FindVehiclesByOwner", OwnerPersonCode=FLEET_OWNER, Fuel="diesel")
    answers["owner none"] = client.call("FindVehiclesByOwner", OwnerPersonCode="010101-00000")
    answers["owner past last page"] = client.call("FindVehiclesByOwner", OwnerPersonCode=FLEET_OWNER, PageNumber=9)
    answers["changes"] = _changes(client)
    return answers


def _walk(client: Client, owner: str, page_size: int) -> list[Any]:
    pages, number = [], 1
    while True:
        page = client.call("FindVehiclesByOwner", OwnerPersonCode=owner, PageNumber=number, PageSize=page_size)
        pages.append(page)
        if not page["MoreAvailable"]:
            return pages
        number += 1
        assert number < 50


def _changes(client: Client) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    since, after = EPOCH, None
    while True:
        page = client.call("GetVehicleChanges", ChangedSince=since, AfterPlateNumber=after, PageSize=15)
        for change in page["Change"]:
            seen[change["Vehicle"]["PlateNumber"]] = change["Vehicle"]
            since, after = change["ChangedAt"], change["Vehicle"]["PlateNumber"]
        if not page["MoreAvailable"]:
            return seen


@pytest.mark.parametrize("source", ["original file", "served ?wsdl"])
def test_every_operation_equals_the_provider_and_validates_against_the_original_schema(
        bridge, vehicles_provider, demo_world, source):  # type: ignore[no-untyped-def]
    address = f"{bridge.url}/legacy/csdd"
    via_bridge = Client(str(VEHICLES_WSDL), address) if source == "original file" else Client(f"{address}?wsdl")
    via_provider = Client(str(VEHICLES_WSDL), vehicles_provider.url)
    from_bridge = _every_operation(via_bridge, demo_world)
    from_provider = _every_operation(via_provider, demo_world)
    assert from_bridge == from_provider
    # the contract's own not-found behaviours: a result code, and a fault with the register's code and text
    assert from_bridge["plate unknown"] == {"ResultCode": 1, "ResultText": "Transportlīdzeklis nav atrasts",
                                            "Vehicle": None}
    assert from_bridge["vin unknown"] == ("fault", "Client.VehicleNotFound", "Transportlīdzeklis ar šādu VIN nav atrasts")
    assert from_bridge["owner none"]["ResultCode"] == 1 and from_bridge["owner none"]["Total"] == 0
    assert len(from_bridge["changes"]) == len(_vehicles(demo_world))
    # every answer (faults too) fits the original schema
    check = schema_check(VEHICLES_WSDL)
    assert len(via_bridge.answers) > 20
    for raw in via_bridge.answers:
        check(raw)


def test_nested_values_reach_the_client_typed(bridge, demo_world):  # type: ignore[no-untyped-def]
    """Attributes, simple content, nil, wrappers and repeated simple values, as the record has them."""
    client = Client(str(VEHICLES_WSDL), f"{bridge.url}/legacy/csdd")
    vehicle = next(v for v in _vehicles(demo_world) if v["technical"]["power_kw"] is None and len(v["holders"]) > 1)
    answer = client.call("GetVehicleByPlate", PlateNumber=vehicle["plate"])["Vehicle"]
    assert answer["Technical"] == {"Mass": {"_value_1": vehicle["technical"]["mass"], "unit": "kg"},
                                   "Fuel": vehicle["technical"]["fuel"], "PowerKw": None}
    assert [h["kind"] for h in answer["Holders"]["Holder"]] == [h["kind"] for h in vehicle["holders"]]
    assert answer["Holders"]["Holder"][0]["To"] == vehicle["holders"][0]["to"]
    assert [o["PersonCode"] for o in answer["Owners"]["Owner"]] == [o["person_code"] for o in vehicle["owners"]]
    assert (answer["PreviousPlates"] or {"Plate": []})["Plate"] == vehicle["previous_plates"]
    raw = client.answers[-1]
    assert b'xsi:nil="true"' in raw and b'unit="kg"' in raw


def test_a_search_walks_every_page_with_the_right_total(bridge, demo_world):  # type: ignore[no-untyped-def]
    client = Client(str(VEHICLES_WSDL), f"{bridge.url}/legacy/csdd")
    expected = sorted(v["plate"] for v in _vehicles(demo_world) if any(o["person_code"] == FLEET_OWNER for o in v["owners"]))
    assert len(expected) > 4
    pages = _walk(client, FLEET_OWNER, page_size=3)
    assert len(pages) == -(-len(expected) // 3)
    assert [p["PageNumber"] for p in pages] == list(range(1, len(pages) + 1))
    assert {p["Total"] for p in pages} == {len(expected)}
    assert [v["PlateNumber"] for p in pages for v in p["Vehicles"]["Vehicle"]] == expected
    assert all(p["ResultCode"] == 0 for p in pages)


def test_xsd_files_are_served_beside_the_wsdl_and_nothing_else(bridge):  # type: ignore[no-untyped-def]
    base = f"{bridge.url}/legacy/csdd"
    served = etree.fromstring(requests.get(f"{base}?wsdl", timeout=10).content)
    imports = served.findall(".//{http://www.w3.org/2001/XMLSchema}import")
    assert [i.get("schemaLocation") for i in imports] == [f"{base}?xsd=CSDD-Types-v1-0.xsd"]
    types = requests.get(f"{base}?xsd=CSDD-Types-v1-0.xsd", timeout=10)
    assert types.status_code == 200
    include = etree.fromstring(types.content).find("{http://www.w3.org/2001/XMLSchema}include")
    assert include.get("schemaLocation") == f"{base}?xsd=CSDD-Common-v1-0.xsd"
    common = requests.get(include.get("schemaLocation"), timeout=10)
    assert common.status_code == 200 and b'name="MassType"' in common.content
    for hostile in ("../../etc/passwd", "%2Fetc%2Fpasswd", "..%2F..%2Fcatalog%2Ffpr_person.yaml", "csdd.yaml",
                    "CSDD-Transportlidzekli-v1-0.wsdl", "99", "file:///etc/passwd"):
        answer = requests.get(f"{base}?xsd={hostile}", timeout=10)
        assert answer.status_code == 404, hostile
        assert b"root:" not in answer.content


def _request(operation: str, children: str) -> bytes:
    return (f'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
            f'<t:{operation}Request xmlns:t="{TNS}">{children}</t:{operation}Request></soap:Body></soap:Envelope>').encode()


@pytest.mark.parametrize("operation, children, element", [
    ("FindVehiclesByOwner", "<t:OwnerPersonCode>220903-22422</t:OwnerPersonCode><t:PageSize>500</t:PageSize>", "PageSize"),
    ("FindVehiclesByOwner", "<t:OwnerPersonCode>220903-22422</t:OwnerPersonCode><t:Fuel>steam</t:Fuel>", "Fuel"),
    ("FindVehiclesByOwner", "<t:OwnerPersonCode>Jānis</t:OwnerPersonCode>", "OwnerPersonCode"),
    ("GetVehicleByPlate", "", "GetVehicleByPlateRequest"),
    ("GetVehicleByPlate", "<t:PlateNumber>ABCDEFGHIJ</t:PlateNumber>", "PlateNumber"),
    ("GetVehicleByPlate", "<t:PlateNumber>AB1234</t:PlateNumber><t:Extra>1</t:Extra>", "Extra"),
])
def test_a_request_the_old_schema_refuses_is_a_fault_naming_the_element(bridge, operation, children, element):  # type: ignore[no-untyped-def]
    fault = parse_fault(post(f"{bridge.url}/legacy/csdd", _request(operation, children)))
    assert fault.code == "Client.InvalidRequest"
    assert element in fault.string, fault.string


@pytest.fixture()
def own_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """A bridge of its own: the test restricts a person."""
    running = start_bridge(tmp_path_factory.mktemp("csdd-access"), workers=1)
    yield running
    running.stop()


def test_a_restricted_person_is_left_out_of_a_search_and_its_total(own_bridge, demo_world):  # type: ignore[no-untyped-def]
    client = Client(str(VEHICLES_WSDL), f"{own_bridge.url}/legacy/csdd")
    fleet = sorted((v for v in _vehicles(demo_world) if any(o["person_code"] == FLEET_OWNER for o in v["owners"])),
                   key=lambda v: v["plate"])
    keeper = next(v["holder_code"] for v in fleet if v["holder_code"] != FLEET_OWNER)
    hidden = {v["plate"] for v in fleet if v["holder_code"] == keeper}
    before = _walk(client, FLEET_OWNER, page_size=2)
    assert before[0]["Total"] == len(fleet)
    cli("access", "restrict", keeper, "csdd_vehicle", env=own_bridge.env())
    time.sleep(1.1)  # permission/restriction caches
    after = _walk(client, FLEET_OWNER, page_size=2)
    plates = [v["PlateNumber"] for p in after for v in p["Vehicles"]["Vehicle"]]
    assert plates == [v["plate"] for v in fleet if v["plate"] not in hidden]
    assert {p["Total"] for p in after} == {len(fleet) - len(hidden)}
    # a lookup of the restricted person's vehicle is refused, as on every face
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.service.GetVehicleByPlate(PlateNumber=sorted(hidden)[0])
    assert caught.value.code == "Server.ServerProxy.AccessDenied.SubjectRestriction"


def test_the_vehicle_replica_is_kept_by_sync_from_the_provider(own_bridge, vehicles_provider):  # type: ignore[no-untyped-def]
    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.catalog.store import DatasetStore
    from viss_bridge.catalog.values import to_json
    from viss_bridge.db import make_engine
    from viss_bridge.demo.legacy_catalog import legacy_manifest

    manifest = legacy_manifest("vehicles", vehicles_provider.url, "replicated")
    (own_bridge.catalog_dir / "csdd_vehicle_replica.yaml").write_text(yaml.safe_dump(manifest, allow_unicode=True))
    assert "csdd_vehicle_replica" in cli("catalog", "validate", str(own_bridge.catalog_dir), env=own_bridge.env()).stdout
    synced = cli("sync", "csdd_vehicle_replica", env=own_bridge.env())
    assert "full sync" in synced.stdout or "record(s)" in synced.stdout, synced.stdout

    def stored() -> dict[str, Any]:
        dataset = load_catalog(own_bridge.catalog_dir).get("csdd_vehicle_replica")
        engine = make_engine(own_bridge.database_url)
        try:
            changes = DatasetStore(engine).changes(dataset, 0, 100000)
        finally:
            engine.dispose()
        return {c.record["plate"]: to_json(c.record) for c in changes if c.record is not None}

    assert stored() == vehicles_provider.state.snapshot()
    plate = next(iter(vehicles_provider.state.records))
    requests.post(f"{vehicles_provider.base_url}/control/update", json={"key": plate, "set": {"model": "Kodiaq"}},
                  timeout=10).raise_for_status()
    again = cli("sync", "csdd_vehicle_replica", env=own_bridge.env())
    assert "1 record(s)" in again.stdout, again.stdout
    assert stored()[plate]["model"] == "Kodiaq"
    assert stored() == vehicles_provider.state.snapshot()
    cli("clients", "grant", DEMO_CONSUMER, "csdd_vehicle_replica", env=own_bridge.env())


def test_catalog_validate_checks_contract_mappings(tmp_path: Path, bridge):  # type: ignore[no-untyped-def]
    """`catalog validate` names the mapping file, the line and the element of each problem."""
    import shutil

    catalog = tmp_path / "catalog"
    shutil.copytree(bridge.catalog_dir, catalog)
    ok = cli("catalog", "validate", str(catalog))
    assert "legacy contract(s) valid: csdd, fpr, var" in ok.stdout, ok.stdout
    mapping = catalog / "legacy" / "csdd.yaml"
    text = mapping.read_text()
    broken = (text.replace("KeeperCode: holder_code", "Keeper: holder_code")
                  .replace("OwnerPersonCode: \"owners[].person_code\"", "OwnerPersonCode: \"owners[].contacts[].value\"")
                  .replace("Fuel: fuel ", "Fuel: fuels "))
    mapping.write_text(broken)
    refused = cli("catalog", "validate", str(catalog), check=False)
    assert refused.returncode == 1
    lines = broken.splitlines()
    keeper_line = next(i for i, line in enumerate(lines, 1) if "Keeper: holder_code" in line)
    assert f"csdd.yaml:{keeper_line}: field 'operations.GetVehicleByPlate.fields.Keeper'" in refused.stderr, refused.stderr
    assert "Vehicle has no element Keeper" in refused.stderr
    assert "requires element KeeperCode, which is not mapped" in refused.stderr
    assert "'owners[].contacts[].value' is not indexed in csdd_vehicle" in refused.stderr
    assert "maps to 'fuels', which is not a dataset field" in refused.stderr


# -- Java (JAX-WS wsimport), from the original file and from /legacy/csdd?wsdl ------------------------


def _wsimport(work: Path, wsdl: str) -> list[str]:
    """wsimport + javac of the vehicle client against ``wsdl``; returns the java command prefix."""
    from tests.integration.test_legacy_contract import JAVA_DIR, JAXWS_CLASSPATH, _java_tools

    _java_tools()
    src, classes = work / "src", work / "classes"
    src.mkdir(parents=True)
    classes.mkdir()
    generated = subprocess.run(["wsimport", "-quiet", "-keep", "-Xnocompile", "-s", str(src), "-d", str(classes),
                                "-p", "lv.gov.csdd", wsdl], capture_output=True, text=True, timeout=180)
    assert generated.returncode == 0, generated.stdout + generated.stderr
    classpath = os.pathsep.join([str(classes), JAXWS_CLASSPATH])
    sources = [str(p) for p in (src / "lv" / "gov" / "csdd").glob("*.java")] + [str(JAVA_DIR / "LegacyVehicleClient.java")]
    compiled = subprocess.run(["javac", "-nowarn", "-cp", classpath, "-d", str(classes), *sources],
                              capture_output=True, text=True, timeout=240)
    assert compiled.returncode == 0, compiled.stderr
    return ["java", "-XX:TieredStopAtLevel=1", "-cp", classpath, "LegacyVehicleClient"]


@pytest.mark.java
@pytest.mark.parametrize("source", ["original file", "served ?wsdl"])
def test_wsimport_client_calls_every_operation_like_the_provider(bridge, vehicles_provider, demo_world, source,
                                                                 tmp_path):  # type: ignore[no-untyped-def]
    address = f"{bridge.url}/legacy/csdd"
    wsdl = VEHICLES_WSDL.as_uri() if source == "original file" else f"{address}?wsdl"
    java = _wsimport(tmp_path, wsdl)
    vehicle = next(v for v in _vehicles(demo_world) if len(v["holders"]) > 1 and v["technical"]["power_kw"] is None)

    def run(endpoint: str) -> list[str]:
        result = subprocess.run([*java, wsdl, endpoint, vehicle["plate"], vehicle["vin"], FLEET_OWNER],
                                capture_output=True, text=True, timeout=180)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    from_bridge, from_provider = run(address), run(vehicles_provider.url)
    assert from_bridge == from_provider
    assert from_bridge[0].startswith(f"plate|0|null|{vehicle['plate']}|{vehicle['vin']}|{vehicle['holder_code']}|")
    assert f"|{vehicle['technical']['mass']} kg|{vehicle['technical']['fuel']}|" in from_bridge[0]
    assert from_bridge[1] == "plate|1|Transportlīdzeklis nav atrasts|NONE"
    assert from_bridge[3] == "vin|FAULT|Client.VehicleNotFound|Transportlīdzeklis ar šādu VIN nav atrasts"
    fleet = [v for v in _vehicles(demo_world) if any(o["person_code"] == FLEET_OWNER for o in v["owners"])]
    owner_pages = [line for line in from_bridge if line.startswith("owner|")]
    assert len(owner_pages) == -(-len(fleet) // 3) and all(f"|{len(fleet)}|" in line for line in owner_pages)
    assert from_bridge[-1] == f"changes|{len(_vehicles(demo_world))}|false"
