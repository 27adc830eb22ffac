"""/legacy/<name> over real HTTP: clients built from the ORIGINAL WSDL, pointed at the bridge,
get the same answers as from the demo legacy provider (zeep and a wsimport-generated Java client)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests
import yaml
import zeep
from lxml import etree

from tests.conftest import RunningBridge, cli, start_bridge
from tests.legacy_helpers import ADDRESSES_WSDL, PERSONS_WSDL, original_client, plain
from tests.soap_helpers import parse_fault, post
from viss_bridge.demo.legacy_providers import ProviderServer, start_provider

NS_WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"


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


def test_changes_operation_pages_through_the_whole_dataset_like_the_provider(bridge, persons_provider):  # type: ignore[no-untyped-def]
    """GetPersonChanges (changed since, paged by time and key) from the store, with the original client."""
    def pull(service) -> dict:  # type: ignore[no-untyped-def,type-arg]
        seen: dict = {}  # type: ignore[type-arg]
        since, after, pages = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), None, 0
        while True:
            page = service.GetPersonChanges(ChangedSince=since, AfterPersonCode=after, PageSize=70)
            pages += 1
            for change in page.Change:
                seen[change.Person.PersonCode] = plain(change.Person)
                since, after = change.ChangedAt, change.Person.PersonCode
            if not page.MoreAvailable:
                return {"records": seen, "pages": pages}

    from_bridge = pull(original_client(PERSONS_WSDL, f"{bridge.url}/legacy/fpr"))
    from_provider = pull(original_client(PERSONS_WSDL, persons_provider.url))
    assert from_bridge["pages"] == from_provider["pages"] == 3
    assert from_bridge["records"] == from_provider["records"]
    assert len(from_bridge["records"]) == 200


def test_every_operation_the_address_wsdl_advertises_is_served(bridge, addresses_provider):  # type: ignore[no-untyped-def]
    """GetAddressChanges, advertised by the original VZD WSDL, pages like the provider (it was UnknownService)."""
    def pull(service) -> dict:  # type: ignore[no-untyped-def,type-arg]
        seen: dict = {}  # type: ignore[type-arg]
        since, after = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), None
        while True:
            page = service.GetAddressChanges(ChangedSince=since, AfterAddressCode=after, PageSize=90)
            for change in page.Change:
                seen[change.Address.AddressCode] = plain(change.Address)
                since, after = change.ChangedAt, change.Address.AddressCode
            if not page.MoreAvailable:
                return seen

    from_bridge = pull(original_client(ADDRESSES_WSDL, f"{bridge.url}/legacy/var"))
    from_provider = pull(original_client(ADDRESSES_WSDL, addresses_provider.url))
    assert from_bridge and from_bridge == {code: from_provider[code] for code in from_bridge}
    operations = etree.fromstring(requests.get(f"{bridge.url}/legacy/var?wsdl", timeout=10).content).findall(
        ".//{http://schemas.xmlsoap.org/wsdl/}portType/{http://schemas.xmlsoap.org/wsdl/}operation")
    assert {o.get("name") for o in operations} == {"GetAddress", "GetAddressChanges"}


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
    unmapped = envelope.replace(b"GetPersonChangesRequest", b"GetSomethingElseRequest")
    fault = parse_fault(post(f"{bridge.url}/legacy/fpr", unmapped))
    assert fault.code == "Server.ServerProxy.UnknownService"  # not an operation of the contract
    fault = parse_fault(post(f"{bridge.url}/legacy/nothing", envelope))
    assert fault.code == "Server.ServerProxy.UnknownService"
    empty = envelope.replace(b"GetPersonChangesRequest", b"GetPersonRequest").replace(
        b"<p:ChangedSince>2020-01-01T00:00:00Z</p:ChangedSince>", b"")
    assert parse_fault(post(f"{bridge.url}/legacy/fpr", empty)).code.startswith("Client.")


def test_an_empty_key_gets_the_old_providers_not_found_answer(bridge, persons_provider):  # type: ignore[no-untyped-def]
    """The old register answered an empty PersonCode with an empty response, not a fault: so must the bridge."""
    via_bridge = original_client(PERSONS_WSDL, f"{bridge.url}/legacy/fpr")
    via_provider = original_client(PERSONS_WSDL, persons_provider.url)
    for empty in ("", "   "):
        assert plain(via_provider.GetPerson(PersonCode=empty)) is None
        assert plain(via_bridge.GetPerson(PersonCode=empty)) is None


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


@pytest.fixture()
def access_bridge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningBridge]:
    """A bridge of its own: these tests restrict persons and narrow permissions."""
    running = start_bridge(tmp_path_factory.mktemp("legacy-access"), workers=1)
    yield running
    running.stop()


def test_access_rules_apply_to_legacy_contracts(access_bridge, demo_world):  # type: ignore[no-untyped-def]
    """The mapping's consumer is held to its permissions: readable fields the old contract cannot do without,
    and persons' restrictions (a lookup fault; records left out of a change feed)."""
    bridge = access_bridge
    riga = "LV/GOV/90000056357/RIGA-DOME"
    contract = yaml.safe_load((Path(__file__).resolve().parents[2] / "viss_bridge/demo/contracts/fpr.yaml").read_text())
    contract["wsdl"] = str(PERSONS_WSDL)
    contract["consumer"] = riga
    (bridge.catalog_dir / "legacy" / "fprriga.yaml").write_text(yaml.safe_dump(contract, allow_unicode=True))
    client = original_client(PERSONS_WSDL, f"{bridge.url}/legacy/fprriga")
    persons = demo_world["fpr_person"]

    person = persons[20]["person_code"]
    cli("access", "restrict", person, "fpr_person", env=bridge.env())
    time.sleep(1.1)  # permission/restriction caches
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.GetPerson(PersonCode=person)
    assert caught.value.code == "Server.ServerProxy.AccessDenied.SubjectRestriction"
    seen = set()
    since, after = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), None
    while True:
        page = client.GetPersonChanges(ChangedSince=since, AfterPersonCode=after, PageSize=100)
        for change in page.Change:
            seen.add(change.Person.PersonCode)
            since, after = change.ChangedAt, change.Person.PersonCode
        if not page.MoreAvailable:
            break
    assert person not in seen and len(seen) == len(persons) - 1

    cli("clients", "revoke", riga, "fpr_person", env=bridge.env())
    cli("clients", "grant", riga, "fpr_person", "--fields", "person_code,first_name,last_name", env=bridge.env())
    time.sleep(1.1)
    with pytest.raises(zeep.exceptions.Fault) as caught:
        client.GetPerson(PersonCode=persons[0]["person_code"])
    assert caught.value.code == "Server.ServerProxy.AccessDenied"
    assert "cannot be given in this contract" in caught.value.message


def test_every_fpr_and_var_answer_validates_against_the_original_wsdl_schema(bridge, demo_world):  # type: ignore[no-untyped-def]
    """Every operation of both contracts, found and not found, answers in the original schema."""
    from zeep.plugins import HistoryPlugin

    from tests.legacy_helpers import schema_check

    for wsdl, name, calls in (
        (PERSONS_WSDL, "fpr", [("GetPerson", {"PersonCode": code}) for code in _person_codes(demo_world)]
         + [("GetPerson", {"PersonCode": ""}),
            ("GetPersonChanges", {"ChangedSince": dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), "PageSize": 50}),
            ("GetPersonChanges", {"ChangedSince": dt.datetime(2100, 1, 1, tzinfo=dt.timezone.utc)})]),
        (ADDRESSES_WSDL, "var", [("GetAddress", {"AddressCode": a["address_code"]}) for a in demo_world["vzd_address"][:3]]
         + [("GetAddress", {"AddressCode": "nothing"}),
            ("GetAddressChanges", {"ChangedSince": dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc), "PageSize": 40})]),
    ):
        history = HistoryPlugin(maxlen=1)
        client = zeep.Client(str(wsdl), plugins=[history])
        binding = next(iter(next(iter(client.wsdl.services.values())).ports.values())).binding
        service = client.create_service(binding.name, f"{bridge.url}/legacy/{name}")
        check = schema_check(wsdl)
        operations = set()
        for operation, arguments in calls:
            getattr(service, operation)(**arguments)
            check(etree.tostring(history.last_received["envelope"]))
            operations.add(operation)
        assert operations == set(binding._operations), name
