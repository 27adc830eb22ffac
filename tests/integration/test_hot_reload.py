"""Adding a manifest publishes a dataset on every endpoint of a running bridge; a bad one changes nothing."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import requests
import zeep

from tests.conftest import cli, start_bridge
from tests.soap_helpers import normalise, xroad_headers

VEHICLES = """\
dataset: csdd_trailer
version: v1
title: {lv: "Transportlīdzekļu reģistrs", en: "Vehicle register"}
owner: LV/GOV/90000000111/CSDD
owner_name: "Ceļu satiksmes drošības direkcija"
key: [plate]
access: public
fields:
  - {name: plate, type: string, description: "Registration plate"}
  - {name: make, type: string}
  - {name: first_registered, type: date}
  - {name: mass_kg, type: integer}
  - name: owners
    type: list
    fields:
      - {name: person_code, type: string}
      - {name: since, type: date}
"""


@pytest.fixture(scope="module")
def own_bridge(tmp_path_factory):  # type: ignore[no-untyped-def]
    running = start_bridge(tmp_path_factory.mktemp("reload"), workers=2)
    yield running
    running.stop()


def wait_for(predicate, seconds: float = 15.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_new_manifest_is_published_without_code_or_restart(own_bridge, tmp_path: Path):  # type: ignore[no-untyped-def]
    (own_bridge.catalog_dir / "csdd_trailer.yaml").write_text(VEHICLES, encoding="utf-8")
    records = tmp_path / "vehicles.jsonl"
    records.write_text('{"plate": "T-KA123", "make": "Volvo", "first_registered": "2019-03-01", "mass_kg": 1850,'
                       ' "owners": [{"person_code": "010190-10005", "since": "2020-01-01"}]}\n', encoding="utf-8")
    loaded = cli("catalog", "load", "csdd_trailer", str(records), env=own_bridge.env())
    assert "1 record(s) loaded" in loaded.stdout
    cli("clients", "add", "LV/GOV/90000069281/VID-EDS", env=own_bridge.env())

    # Both workers pick the manifest up: every WSDL fetch (spread over workers) shows the new operation.
    assert wait_for(lambda: all(b"csdd_trailer" in requests.get(f"{own_bridge.xroad}?wsdl", timeout=5).content
                                for _ in range(6)))
    from viss_bridge.catalog.catalog import load_catalog

    dataset = load_catalog(own_bridge.catalog_dir).get("csdd_trailer")
    client = zeep.Client(f"{own_bridge.xroad}?wsdl")
    answer = client.service.csdd_trailer(plate="T-KA123",
                                         _soapheaders=xroad_headers("LV/GOV/90000069281/VID-EDS", dataset))
    assert normalise(answer.body.record) == normalise({
        "plate": "T-KA123", "make": "Volvo", "first_registered": __import__("datetime").date(2019, 3, 1),
        "mass_kg": 1850, "owners": [{"person_code": "010190-10005",
                                     "since": __import__("datetime").date(2020, 1, 1)}]})
    native = zeep.Client(f"{own_bridge.catalog}?wsdl")
    assert "csdd_trailer" in {d.name for d in native.service.listDatasets()}
    xml = requests.get(f"{own_bridge.url}/listClients", timeout=5).text
    assert "Ceļu satiksmes drošības direkcija" in xml


def test_broken_manifest_is_skipped_and_health_names_file_line_and_field(own_bridge):  # type: ignore[no-untyped-def]
    before = requests.get(f"{own_bridge.url}/health", timeout=5).json()["catalog"]["datasets"]
    broken = own_bridge.catalog_dir / "broken_one.yaml"
    broken.write_text(VEHICLES.replace("csdd_trailer", "broken_one").replace("type: integer", "type: number"),
                      encoding="utf-8")
    try:
        # Each request may reach either worker: wait until six in a row (both workers) saw the refusal.
        assert wait_for(lambda: all(requests.get(f"{own_bridge.url}/health", timeout=5).json()["catalog"]["status"]
                                    == "manifests-refused" for _ in range(6)))
        health = requests.get(f"{own_bridge.url}/health", timeout=5).json()
        assert "broken_one.yaml:12" in health["catalog"]["error"] and "mass_kg" in health["catalog"]["error"]
        assert health["catalog"]["datasets"] == before  # the others stay published, the broken one is not
        for _ in range(6):  # every worker agrees
            assert requests.get(f"{own_bridge.url}/health", timeout=5).json()["catalog"]["datasets"] == before
        # Breaking a published manifest keeps its last good version in service.
        published = own_bridge.catalog_dir / "csdd_trailer.yaml"
        good_text = published.read_text(encoding="utf-8")
        published.write_text(good_text.replace("type: date", "type: day", 1), encoding="utf-8")
        assert wait_for(lambda: "csdd_trailer.yaml" in (requests.get(f"{own_bridge.url}/health", timeout=5)
                                                        .json()["catalog"].get("error") or ""))
        assert all(b"csdd_trailer" in requests.get(f"{own_bridge.xroad}?wsdl", timeout=5).content for _ in range(4))
        published.write_text(good_text, encoding="utf-8")
        assert requests.get(f"{own_bridge.xroad}?wsdl", timeout=5).status_code == 200
        result = cli("catalog", "validate", str(own_bridge.catalog_dir), check=False)
        assert result.returncode == 1 and "broken_one.yaml:12: field 'fields.mass_kg.type'" in result.stderr
    finally:
        broken.unlink()
    assert wait_for(lambda: requests.get(f"{own_bridge.url}/health", timeout=5).json()["catalog"]["status"] == "ok")


def test_reloads_under_load_serve_every_request_with_the_old_or_the_new_version(own_bridge):  # type: ignore[no-untyped-def]
    """While a manifest is edited again and again, callers keep being answered, each by one whole version."""
    import threading

    from viss_bridge.catalog.catalog import load_catalog
    from viss_bridge.facade.xroad import lookup_request

    manifest = own_bridge.catalog_dir / "csdd_reloading.yaml"
    manifest.write_text(VEHICLES.replace("csdd_trailer", "csdd_reloading"), encoding="utf-8")
    # Both workers publish it before the callers start (fresh connections land on either worker).
    assert wait_for(lambda: all(b"csdd_reloading" in requests.get(f"{own_bridge.xroad}?wsdl&service=csdd_reloading",
                                                                   timeout=10, headers={"Connection": "close"}).content
                                for _ in range(20)))
    time.sleep(1.0)  # a worker that no request reached yet still follows within one reload interval (0.2 s)
    person = load_catalog(own_bridge.catalog_dir).get("fpr_person")
    lookup = lookup_request(person, "LV/GOV/90000069281/VID-EDS", {"person_code": "000000-00000"}, "reload-1")
    problems: list[str] = []
    versions: set[int] = set()
    stop = threading.Event()

    def caller() -> None:
        while not stop.is_set():
            wsdl = requests.get(f"{own_bridge.xroad}?wsdl&service=csdd_reloading", timeout=30,
                                headers={"Connection": "close"})
            answer = requests.post(own_bridge.xroad, data=lookup, headers={"Content-Type": "text/xml"}, timeout=30)
            if wsdl.status_code != 200 or answer.status_code != 200:
                problems.append(f"{wsdl.status_code}/{answer.status_code}: {wsdl.text[:200]} {answer.text[:200]}")
                continue
            seen = [n for n in range(6) if f"edit_{n}".encode() in wsdl.content]
            if len(seen) > 1:  # a WSDL mixing two versions
                problems.append(f"fields of versions {seen} in one WSDL")
            versions.update(seen)

    threads = [threading.Thread(target=caller) for _ in range(3)]
    for thread in threads:
        thread.start()
    try:
        for n in range(6):
            text = VEHICLES.replace("csdd_trailer", "csdd_reloading").replace(
                "fields:\n", f"fields:\n  - {{name: edit_{n}, type: string}}\n", 1)
            manifest.write_text(text, encoding="utf-8")
            assert wait_for(lambda: f"edit_{n}".encode() in requests.get(
                f"{own_bridge.xroad}?wsdl&service=csdd_reloading", timeout=10).content)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        manifest.unlink()
    assert problems == []
    assert len(versions) >= 2  # the callers really saw the versions change under them


def test_an_edit_reaches_the_whole_wsdls_of_every_worker_still_typed_and_loadable(own_bridge):  # type: ignore[no-untyped-def]
    """The whole /xroad and /catalog WSDLs are composed beside serving from per-dataset parts: an edit of one
    manifest shows in both, on every worker, and both still load in zeep with the field typed."""
    from lxml import etree

    manifest = own_bridge.catalog_dir / "csdd_composed.yaml"
    text = VEHICLES.replace("csdd_trailer", "csdd_composed")
    manifest.write_text(text, encoding="utf-8")
    try:
        assert wait_for(lambda: all(b"csdd_composed" in requests.get(f"{own_bridge.xroad}?wsdl", timeout=30,
                                                                     headers={"Connection": "close"}).content
                                    for _ in range(8)), 60)
        manifest.write_text(text.replace("fields:\n", "fields:\n  - {name: colour_code, type: integer}\n", 1),
                            encoding="utf-8")
        for path in (own_bridge.xroad, own_bridge.catalog):
            assert wait_for(lambda: all(b"colour_code" in requests.get(f"{path}?wsdl", timeout=30,
                                                                       headers={"Connection": "close"}).content
                                        for _ in range(8)), 60), path
            wsdl = requests.get(f"{path}?wsdl", timeout=30).content
            assert b"anyType" not in wsdl
            root = etree.fromstring(wsdl)
            record = root.find(".//{http://www.w3.org/2001/XMLSchema}complexType[@name='csdd_composed_record']")
            field = record.find(".//{http://www.w3.org/2001/XMLSchema}element[@name='colour_code']")
            assert field is not None and field.get("type", "").endswith(":long")
        client = zeep.Client(f"{own_bridge.xroad}?wsdl")
        assert "colour_code" in str(client.get_type("{http://vissbridge.gov.lv/xroad/datasets}csdd_composed_record"))
        native = zeep.Client(f"{own_bridge.catalog}?wsdl")
        assert "csdd_composed" in str(native.get_type("{http://vissbridge.gov.lv/catalog}AnyRecord"))
    finally:
        manifest.unlink()
