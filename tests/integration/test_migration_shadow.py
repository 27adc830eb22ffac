"""Shadow runs over real HTTP: demo legacy provider vs the bridge's /legacy contract, paced, recorded."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

from tests.conftest import cli
from viss_bridge.demo.legacy_providers import ProviderServer, start_provider

ROOT = Path(__file__).resolve().parents[2]
PERSONS_WSDL = ROOT / "wsdl" / "PMLP-FizPersonas-v1-0.wsdl"
NS = "http://ivis.eps.gov.lv/XMLSchemas/PMLP/FizPersonas/v1-0"
SERVICE = "PMLP/FizPersonas/v1-0"


def person_request(code: str, prefix: str = "p") -> str:
    return (f'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/">'
            f'<soapenv:Header/><soapenv:Body><{prefix}:GetPersonRequest xmlns:{prefix}="{NS}">'
            f'<{prefix}:PersonCode>{code}</{prefix}:PersonCode></{prefix}:GetPersonRequest></soapenv:Body>'
            f'</soapenv:Envelope>')


def write_requests(folder: Path, codes: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for index, code in enumerate(codes):
        (folder / f"get-person-{index:02d}.xml").write_text(person_request(code, "p" if index % 2 else "fpr"))
    return folder


@pytest.fixture()
def persons_provider() -> Iterator[ProviderServer]:
    provider = start_provider("persons", size=200)
    yield provider
    provider.stop()


def _codes(demo_world) -> list[str]:  # type: ignore[no-untyped-def]
    persons = demo_world["fpr_person"]
    chosen = persons[:8]
    chosen.append(next(p for p in persons if p["death_date"] is not None))
    chosen.append(next(p for p in persons if len(p["addresses"]) > 1))
    return [p["person_code"] for p in chosen] + ["010101-00000"]  # the last one exists nowhere


def test_shadow_finds_full_parity_on_the_demo_and_paces_the_provider(bridge, persons_provider, demo_world,
                                                                     tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = write_requests(tmp_path / "requests", _codes(demo_world))
    env = {"VISS_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'migration.sqlite'}"}
    cli("migrate", "inventory", str(PERSONS_WSDL), "--record", env=env)
    persons_provider.reset()
    started = time.monotonic()
    result = cli("migrate", "shadow", "--service", SERVICE, "--legacy-url", persons_provider.url,
                 "--bridge-url", f"{bridge.url}/legacy/fpr", "--requests", str(folder), "--wsdl", str(PERSONS_WSDL),
                 "--unordered", "Person/Address", "--rate", "10", "--record", "--format", "json",
                 "-o", str(tmp_path / "run.json"), "--fail-under", "100", env=env)
    elapsed = time.monotonic() - started
    report = json.loads(result.stdout)
    assert (report["requests"], report["equal"], report["different"], report["errors"], report["parity"]) == \
        (11, 11, 0, 0, 100.0), result.stdout
    # 11 requests at 10/s with a burst of 1: at least 1 s between the first and the last
    first, last = report["started"], report["finished"]
    assert elapsed >= 1.0 and first < last
    # the provider saw each request exactly once
    assert persons_provider.calls().get("GetPerson") == 11
    status = json.loads(cli("migrate", "status", "--format", "json", env=env).stdout)
    [service] = status["services"]
    assert (service["name"], service["state"], service["parity"], service["shadow_requests"]) == \
        (SERVICE, "shadowing", 100.0, 11)


def test_shadow_pinpoints_a_deliberately_changed_field(bridge, persons_provider, demo_world, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    codes = _codes(demo_world)
    folder = write_requests(tmp_path / "requests", codes)
    changed = codes[3]
    response = requests.post(f"{persons_provider.base_url}/control/update",
                             json={"key": changed, "set": {"last_name": "Ozoliņa-Changed"}}, timeout=10)
    assert response.status_code == 200, response.text
    result = cli("migrate", "shadow", "--service", SERVICE, "--legacy-url", persons_provider.url,
                 "--bridge-url", f"{bridge.url}/legacy/fpr", "--requests", str(folder), "--wsdl", str(PERSONS_WSDL),
                 "--unordered", "Person/Address", "--rate", "50", "--fail-under", "100", check=False)
    assert result.returncode == 1  # below --fail-under
    assert "11 request(s), 10 equal, 1 different, 0 error(s): parity 90.9%" in result.stdout
    original = next(p for p in demo_world["fpr_person"] if p["person_code"] == changed)["last_name"]
    assert (f"  get-person-03.xml: 1 difference(s)\n"
            f"    GetPersonResponse/Person/Surname: legacy 'Ozoliņa-Changed', bridge '{original}'") in result.stdout
    assert "fields that differ (requests): GetPersonResponse/Person/Surname (1)" in result.stdout


def test_an_unreachable_or_faulty_provider_is_an_error_not_parity(bridge, persons_provider, demo_world,
                                                                  tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = write_requests(tmp_path / "requests", _codes(demo_world)[:3])
    persons_provider.set_mode("fail", times=1)  # one HTTP 503 HTML page
    result = cli("migrate", "shadow", "--service", SERVICE, "--legacy-url", persons_provider.url,
                 "--bridge-url", f"{bridge.url}/legacy/fpr", "--requests", str(folder), "--rate", "50",
                 "--format", "json")
    report = json.loads(result.stdout)
    assert (report["equal"], report["errors"]) == (2, 1)
    [error] = [o for o in report["outcomes"] if o["status"] == "error"]
    assert error["request"] == "get-person-00.xml" and "legacy provider: HTTP 503" in error["error"]


def test_a_plan_compares_several_services_and_records_their_differences(bridge, persons_provider, demo_world,
                                                                        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    addresses = start_provider("addresses", size=200)
    try:
        write_requests(tmp_path / "requests" / "persons", _codes(demo_world)[:4])
        address_ns = "http://ivis.eps.gov.lv/XMLSchemas/VZD/Adreses/v1-0"
        folder = tmp_path / "requests" / "addresses"
        folder.mkdir(parents=True)
        chosen = demo_world["vzd_address"][:5]
        for index, address in enumerate(chosen):
            (folder / f"get-address-{index}.xml").write_text(
                '<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
                f'<a:GetAddressRequest xmlns:a="{address_ns}"><a:AddressCode>{address["address_code"]}</a:AddressCode>'
                '</a:GetAddressRequest></e:Body></e:Envelope>')
        requests.post(f"{addresses.base_url}/control/update",
                      json={"key": chosen[2]["address_code"], "set": {"postal_code": "LV-9999"}}, timeout=10)
        (tmp_path / "plan.yaml").write_text(f"""
rate: 50
services:
  - service: {SERVICE}
    legacy_url: {persons_provider.url}
    bridge_url: {bridge.url}/legacy/fpr
    wsdl: {PERSONS_WSDL}
    requests: requests/persons
    unordered: [Person/Address]
  - service: VZD/Adreses/v1-0
    legacy_url: {addresses.url}
    bridge_url: {bridge.url}/legacy/var
    wsdl: {ROOT / "wsdl" / "VZD-Adreses-v1-0.wsdl"}
    requests: requests/addresses
    rate: 20
""")
        env = {"VISS_BRIDGE_DATABASE_URL": f"sqlite:///{tmp_path / 'migration.sqlite'}"}
        cli("migrate", "inventory", str(ROOT / "wsdl"), "--record", env=env)
        result = cli("migrate", "shadow", "--plan", str(tmp_path / "plan.yaml"), "--record", "--fail-under", "100",
                     env=env, check=False)
        assert result.returncode == 1, result.stdout + result.stderr
        assert f"{SERVICE}: 4 request(s), 4 equal, 0 different, 0 error(s): parity 100.0%" in result.stdout
        assert "VZD/Adreses/v1-0: 5 request(s), 4 equal, 1 different, 0 error(s): parity 80.0%" in result.stdout
        assert "get-address-2.xml: 1 difference(s)" in result.stdout
        assert "GetAddressResponse/Address/PostalCode: legacy 'LV-9999'" in result.stdout
        status = {s["name"]: s for s in json.loads(cli("migrate", "status", "--format", "json", env=env).stdout)["services"]}
        assert status[SERVICE]["parity"] == 100.0 and status["VZD/Adreses/v1-0"]["parity"] == 80.0
        assert status["VZD/Adreses/v1-0"]["differing_fields"] == {"GetAddressResponse/Address/PostalCode": 1}
        report = tmp_path / "report.html"
        cli("migrate", "report", "-o", str(report), env=env)
        assert "PostalCode (1)" in report.read_text()
        broken = tmp_path / "broken-plan.yaml"
        broken.write_text("services:\n  - service: X\n    legacy_url: ftp://nope\n")
        refused = cli("migrate", "shadow", "--plan", str(broken), check=False)
        assert refused.returncode == 1 and "broken-plan.yaml:3: services.0.legacy_url" in refused.stderr
    finally:
        addresses.stop()


def test_inventory_of_served_wsdls_over_http_needs_allow_network(bridge) -> None:  # type: ignore[no-untyped-def]
    refused = cli("migrate", "inventory", f"{bridge.url}/legacy/fpr?wsdl", check=False)
    assert refused.returncode == 1 and "--allow-network" in refused.stderr
    result = cli("migrate", "inventory", f"{bridge.url}/legacy/fpr?wsdl", f"{bridge.xroad}?wsdl", "--allow-network",
                 "--format", "json")
    data = json.loads(result.stdout)
    assert data["totals"]["failed"] == 0 and data["totals"]["wsdls"] == 2
    legacy, xroad = data["wsdls"]
    assert legacy["services"][0]["ports"][0]["address"] == f"{bridge.url}/legacy/fpr"
    operations = {o["name"]: o for o in xroad["services"][0]["ports"][0]["operations"]}
    assert {"fpr_person", "vzd_address"} <= set(operations)
    person = operations["fpr_person"]
    # X-Road headers are soap:header parts: listed as headers, not as body fields
    assert {"client", "service", "id", "userId", "protocolVersion"} <= set(person["input"]["headers"])
    assert [f["path"] for f in person["input"]["fields"]] == ["person_code"]


def test_a_change_feed_is_shadowed_with_its_times_ignored_and_its_order_free(bridge, persons_provider,
                                                                             tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "requests"
    folder.mkdir()
    (folder / "changes-all.xml").write_text(
        '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
        f'<p:GetPersonChangesRequest xmlns:p="{NS}"><p:ChangedSince>1970-01-01T00:00:00Z</p:ChangedSince>'
        '<p:PageSize>500</p:PageSize></p:GetPersonChangesRequest></s:Body></s:Envelope>')
    common = ["migrate", "shadow", "--service", SERVICE, "--legacy-url", persons_provider.url,
              "--bridge-url", f"{bridge.url}/legacy/fpr", "--requests", str(folder), "--wsdl", str(PERSONS_WSDL),
              "--format", "json"]
    # the store's change times are not the register's: compared as they are, they differ
    strict = json.loads(cli(*common).stdout)
    assert strict["parity"] == 0.0
    assert any(path.endswith("/ChangedAt") for path in strict["differing_fields"])
    # declared: change times ignored, the feed's order free -> the same 200 persons
    lenient = json.loads(cli(*common, "--ignore", "Change/ChangedAt", "--unordered", "GetPersonChangesResponse/Change",
                             "--unordered", "Person/Address").stdout)
    assert lenient["parity"] == 100.0, lenient["outcomes"][0]["differences"][:5]
