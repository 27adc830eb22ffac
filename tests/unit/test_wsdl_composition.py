"""The WSDLs of every dataset, composed from per-dataset parts, are the contract one Spyne app of every
dataset used to render; and a request never builds the whole X-Road WSDL when a watcher does."""

from __future__ import annotations

from pathlib import Path

import zeep
from spyne.interface.wsdl import Wsdl11

from tests.wsdl_compare import differences
from viss_bridge.access.identity import Caller
from viss_bridge.catalog.catalog import load_catalog
from viss_bridge.facade.catalog_native import CatalogFacade
from viss_bridge.facade.soap_runtime import make_spyne_wsgi
from viss_bridge.facade.xroad import XROAD_TNS, XRoadEndpoint, XRoadFacade, services_of
from viss_bridge.facade.xroad_wsdl import add_xroad_headers

DEMO = Path(__file__).resolve().parents[2] / "viss_bridge" / "demo" / "catalog"
BASE = "http://bridge.example"


def spyne_whole_wsdl(facade: XRoadFacade) -> bytes:
    """What the whole /xroad?wsdl was before composition: one Spyne app holding every dataset's operation."""
    app = make_spyne_wsgi([facade._service_class(list(facade.catalog))], XROAD_TNS, "viss_bridge_xroad").app
    document = Wsdl11(app.interface)
    document.build_interface_document(f"{BASE}/xroad")
    operations = {code: d for d in facade.catalog for code in services_of(d)}  # a dataset's lookup and search
    return add_xroad_headers(document.get_interface_document(), operations, f"{BASE}/xroad")


def test_composed_whole_xroad_wsdl_is_the_contract_of_one_app_of_every_service(tmp_path: Path) -> None:
    catalog = load_catalog(DEMO)
    facade = XRoadFacade(catalog, None, None, "LV", BASE)  # type: ignore[arg-type]
    composed = facade.wsdl()
    assert differences(spyne_whole_wsdl(facade), composed) == []
    (tmp_path / "xroad.wsdl").write_bytes(composed)
    client = zeep.Client(str(tmp_path / "xroad.wsdl"))
    operations = {name for binding in client.wsdl.bindings.values() for name in binding._operations}
    assert operations == {code for d in catalog for code in services_of(d)}
    assert "csdd_vehicleSearch" in operations  # the searches of indexed datasets are in it too
    # nested types are there, typed (a list of objects in the demo's vehicles)
    assert "owners" in str(client.get_type(f"{{{XROAD_TNS}}}csdd_vehicle_record"))


def test_a_new_version_composes_from_the_parts_it_kept_and_the_changed_one(tmp_path: Path) -> None:
    folder = tmp_path / "catalog"
    folder.mkdir()
    for manifest in DEMO.glob("*.yaml"):
        (folder / manifest.name).write_text(manifest.read_text(encoding="utf-8"), encoding="utf-8")
    old = XRoadFacade(load_catalog(folder), None, None, "LV", BASE)  # type: ignore[arg-type]
    old_native = CatalogFacade(old.catalog, None, None, BASE)
    old.build_whole()
    old_native.build_wsdl()
    edited = folder / "vzd_address.yaml"
    edited.write_text(edited.read_text(encoding="utf-8").replace(
        "fields:\n", "fields:\n  - {name: parcel_area_m2, type: decimal}\n", 1), encoding="utf-8")
    catalog = load_catalog(folder)
    new = XRoadFacade(catalog, None, None, "LV", BASE, previous=old)  # type: ignore[arg-type]
    new_native = CatalogFacade(catalog, None, None, BASE, previous=old_native)
    assert set(new._parts) == {(n, None) for n in catalog.datasets if n != "vzd_address"}  # kept, not rebuilt
    assert b"parcel_area_m2" in new.wsdl() and b"parcel_area_m2" not in old.wsdl()
    assert differences(spyne_whole_wsdl(new), new.wsdl()) == []
    assert b"parcel_area_m2" in new_native.wsdl() and b"anyType" not in new_native.wsdl()


def test_per_service_wsdl_is_served_while_the_whole_one_is_not_built_and_a_request_does_not_build_it() -> None:
    catalog = load_catalog(DEMO)
    facade = XRoadFacade(catalog, None, None, "LV", BASE)  # type: ignore[arg-type]

    class Published:
        xroad = facade

    endpoint = XRoadEndpoint(lambda environ, query: Caller(None, None), whole_wait=0.05)
    one = endpoint.wsdl(Published, {}, {"service": ["fpr_person"]})
    assert one.status == 200 and b"fpr_person" in one.body
    whole = endpoint.wsdl(Published, {}, {"wsdl": [""]})
    assert whole.status == 503 and ("Retry-After", "5") in whole.headers and b"service=NAME" in whole.body
    assert not facade.whole_built  # the request waited briefly; it did not build it
    assert facade.build_whole()  # what the server's watcher does
    whole = endpoint.wsdl(Published, {}, {"wsdl": [""]})
    assert whole.status == 200 and all(name.encode() in whole.body for name in catalog.datasets)
