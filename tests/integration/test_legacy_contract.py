"""/legacy/<name> over real HTTP: clients built from the ORIGINAL WSDL, pointed at the bridge,
get the same answers as from the demo legacy provider (zeep and a wsimport-generated Java client)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import requests
from lxml import etree

from tests.legacy_helpers import ADDRESSES_WSDL, PERSONS_WSDL, original_client, plain
from tests.soap_helpers import parse_fault, post
from viss_bridge.demo.legacy_providers import ProviderServer, start_provider

NS_WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"


@pytest.fixture(scope="module")
def persons_provider() -> Iterator[ProviderServer]:
    provider = start_provider("persons", size=200)
    yield provider
    provider.stop()


@pytest.fixture(scope="module")
def addresses_provider() -> Iterator[ProviderServer]:
    provider = start_provider("addresses", size=200)
    yield provider
    provider.stop()


def _person_codes(demo_world) -> list[str]:  # type: ignore[no-untyped-def]
    persons = demo_world["fpr_person"]
    deceased = next(p for p in persons if p["death_date"] is not None)
    several = next(p for p in persons if len(p["addresses"]) > 1)
    return [persons[0]["person_code"], deceased["person_code"], several["person_code"], "010101-00000"]


def test_zeep_client_from_original_wsdl_gets_the_providers_answers(bridge, persons_provider, demo_world):  # type: ignore[no-untyped-def]
    via_bridge = original_client(PERSONS_WSDL, f"{bridge.url}/legacy/fpr")
    via_provider = original_client(PERSONS_WSDL, persons_provider.url)
    for code in _person_codes(demo_world):
        expected = plain(via_provider.GetPerson(PersonCode=code))
        assert plain(via_bridge.GetPerson(PersonCode=code)) == expected, code
    assert plain(via_bridge.GetPerson(PersonCode="010101-00000")) is None


def test_address_contract_equals_provider_including_optional_and_decimal_fields(bridge, addresses_provider, demo_world):  # type: ignore[no-untyped-def]
    via_bridge = original_client(ADDRESSES_WSDL, f"{bridge.url}/legacy/var")
    via_provider = original_client(ADDRESSES_WSDL, addresses_provider.url)
    addresses = demo_world["vzd_address"]
    chosen = [addresses[0], next(a for a in addresses if a["flat"]), addresses[-1]]
    for address in chosen:
        code = address["address_code"]
        assert plain(via_bridge.GetAddress(AddressCode=code)) == plain(via_provider.GetAddress(AddressCode=code))


def test_served_wsdl_is_the_original_with_only_the_address_changed(bridge):  # type: ignore[no-untyped-def]
    served = etree.fromstring(requests.get(f"{bridge.url}/legacy/fpr?wsdl", timeout=10).content)
    original = etree.parse(str(PERSONS_WSDL)).getroot()
    addresses = served.findall(f".//{{{NS_WSDL_SOAP}}}address")
    assert [a.get("location") for a in addresses] == [f"{bridge.url}/legacy/fpr"]
    for element in (served, original):
        for address in element.iter(f"{{{NS_WSDL_SOAP}}}address"):
            address.set("location", "-")
    assert etree.tostring(served, method="c14n") == etree.tostring(original, method="c14n")
    # and a client built from the served WSDL works as it stands
    import zeep

    assert plain(zeep.Client(f"{bridge.url}/legacy/fpr?wsdl").service.GetPerson(PersonCode="010101-00000")) is None


def test_legacy_faults_are_soap11_with_precise_codes(bridge):  # type: ignore[no-untyped-def]
    assert requests.get(f"{bridge.url}/legacy/nothing?wsdl", timeout=10).status_code == 404
    envelope = (b'<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/"><soap:Body>'
                b'<p:GetPersonChangesRequest xmlns:p="http://ivis.eps.gov.lv/XMLSchemas/PMLP/FizPersonas/v1-0">'
                b'<p:ChangedSince>2020-01-01T00:00:00Z</p:ChangedSince></p:GetPersonChangesRequest></soap:Body></soap:Envelope>')
    fault = parse_fault(post(f"{bridge.url}/legacy/fpr", envelope))
    assert fault.code == "Server.ServerProxy.UnknownService"  # not mapped in the demo contract
    fault = parse_fault(post(f"{bridge.url}/legacy/nothing", envelope))
    assert fault.code == "Server.ServerProxy.UnknownService"
    empty = envelope.replace(b"GetPersonChangesRequest", b"GetPersonRequest").replace(
        b"<p:ChangedSince>2020-01-01T00:00:00Z</p:ChangedSince>", b"")
    assert parse_fault(post(f"{bridge.url}/legacy/fpr", empty)).code.startswith("Client.")


# -- Java (JAX-WS wsimport) ------------------------------------------------------

JAVA_DIR = Path(__file__).resolve().parents[1] / "java" / "legacy"
# As in test_java_client.py: jaxws-rt.jar's manifest Class-Path names every jar the RI needs.
JAXWS_CLASSPATH = os.environ.get("VISS_BRIDGE_JAXWS_CLASSPATH", "/usr/share/java/jaxws-rt.jar")


def _java_tools() -> None:
    missing = [tool for tool in ("wsimport", "javac", "java") if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} missing in CI (Debian package jaxws and a JDK)")
        pytest.skip(f"needs {', '.join(missing)} (Debian package jaxws and a JDK)")


@pytest.fixture(scope="module")
def java_client(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """wsimport from the ORIGINAL WSDL, compile the old consumer; returns the java command prefix."""
    _java_tools()
    work = tmp_path_factory.mktemp("java-legacy")
    src, classes = work / "src", work / "classes"
    src.mkdir()
    classes.mkdir()
    subprocess.run(["wsimport", "-quiet", "-keep", "-Xnocompile", "-s", str(src), "-d", str(classes), "-p", "lv.gov.fpr",
                    str(PERSONS_WSDL)], check=True, capture_output=True, timeout=120)
    classpath = os.pathsep.join([str(classes), JAXWS_CLASSPATH])
    sources = [str(p) for p in (src / "lv" / "gov" / "fpr").glob("*.java")] + [str(JAVA_DIR / "LegacyPersonClient.java")]
    compiled = subprocess.run(["javac", "-nowarn", "-cp", classpath, "-d", str(classes), *sources],
                              capture_output=True, text=True, timeout=180)
    assert compiled.returncode == 0, compiled.stderr
    return ["java", "-XX:TieredStopAtLevel=1", "-cp", classpath, "LegacyPersonClient", str(PERSONS_WSDL)]


@pytest.mark.java
def test_wsimport_java_client_from_original_wsdl_gets_the_providers_answers(bridge, persons_provider, java_client,
                                                                           demo_world):  # type: ignore[no-untyped-def]
    codes = _person_codes(demo_world)

    def run(endpoint: str) -> list[str]:
        result = subprocess.run([*java_client, endpoint, *codes], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    from_provider = run(persons_provider.url)
    from_bridge = run(f"{bridge.url}/legacy/fpr")
    assert from_bridge == from_provider
    assert len(from_bridge) == len(codes)
    assert from_bridge[-1] == "010101-00000|NOT_FOUND"
    first = demo_world["fpr_person"][0]
    assert from_bridge[0].split("|")[1:4] == [first["person_code"], first["first_name"], first["last_name"]]
