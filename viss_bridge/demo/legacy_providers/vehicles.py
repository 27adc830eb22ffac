"""The demo vehicle register (CSDD Transportlīdzekļi v1-0), answering its hand-written WSDL natively.

Its contract is richer than the other registers' (a mass with a unit attribute, wrappers of
repeated owners, holders and plates, result codes, a search with paging and a total, a fault of
its own for an unknown VIN), so the answers are written here element by element with lxml, in
the order ``wsdl/CSDD-Types-v1-0.xsd`` gives, straight from the synthetic world's records. Nothing
here uses the bridge's contract mapping: a call through ``/legacy/csdd`` and a call to this
provider are two independent renderings that tests compare.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

from viss_bridge.xml import NS_SOAP11

TNS_VEHICLES = "http://ivis.eps.gov.lv/XMLSchemas/CSDD/Transportlidzekli/v1-0"
NOT_FOUND_TEXT = "Transportlīdzeklis nav atrasts"
VIN_NOT_FOUND_CODE = "Client.VehicleNotFound"
VIN_NOT_FOUND_TEXT = "Transportlīdzeklis ar šādu VIN nav atrasts"
DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100


def _q(name: str) -> str:
    return f"{{{TNS_VEHICLES}}}{name}"


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _add(parent: etree._Element, name: str, value: Any) -> etree._Element:
    element = etree.SubElement(parent, _q(name))
    element.text = _text(value)
    return element


def vehicle_element(parent: etree._Element, name: str, record: dict[str, Any]) -> etree._Element:
    """``VehicleType`` of the WSDL from a ``csdd_vehicle`` record."""
    vehicle = etree.SubElement(parent, _q(name))
    for element, field in (("PlateNumber", "plate"), ("Vin", "vin"), ("KeeperCode", "holder_code"), ("Make", "make"),
                           ("Model", "model"), ("FirstRegistered", "first_registered")):
        _add(vehicle, element, record[field])
    technical = etree.SubElement(vehicle, _q("Technical"))
    _add(technical, "Mass", record["technical"]["mass"]).set("unit", "kg")
    _add(technical, "Fuel", record["technical"]["fuel"])
    power = etree.SubElement(technical, _q("PowerKw"))
    if record["technical"].get("power_kw") is None:
        power.set("{http://www.w3.org/2001/XMLSchema-instance}nil", "true")
    else:
        power.text = _text(record["technical"]["power_kw"])
    owners = etree.SubElement(vehicle, _q("Owners"))
    for owner in record["owners"]:
        entry = etree.SubElement(owners, _q("Owner"))
        _add(entry, "PersonCode", owner["person_code"])
        _add(entry, "Share", owner["share"])
        _add(entry, "From", owner["from"])
        for contact in owner.get("contacts") or []:
            _add(entry, "Contact", contact["value"]).set("kind", contact["kind"])
    holders = etree.SubElement(vehicle, _q("Holders"))
    for holder in record.get("holders") or []:
        entry = etree.SubElement(holders, _q("Holder"), kind=holder["kind"])
        _add(entry, "Code", holder["code"])
        _add(entry, "From", holder["from"])
        if holder.get("to") is not None:
            _add(entry, "To", holder["to"])
    plates = etree.SubElement(vehicle, _q("PreviousPlates"))
    for plate in record.get("previous_plates") or []:
        _add(plates, "Plate", plate)
    return vehicle


def _envelope() -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"soap": NS_SOAP11, "tl": TNS_VEHICLES})
    return envelope, etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")


def _fault(code: str, text: str) -> tuple[str, bytes]:
    envelope, body = _envelope()
    fault = etree.SubElement(body, f"{{{NS_SOAP11}}}Fault")
    etree.SubElement(fault, "faultcode").text = code
    etree.SubElement(fault, "faultstring").text = text
    return "500 Internal Server Error", etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def _ok(envelope: etree._Element) -> tuple[str, bytes]:
    return "200 OK", etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


class VehicleSchema:
    """The register's own XML Schema (from its WSDL's files): requests it refuses get a Client fault."""

    _lock = threading.Lock()
    _schema: etree.XMLSchema | None = None

    @classmethod
    def get(cls, wsdl_file: Path) -> etree.XMLSchema:
        with cls._lock:
            if cls._schema is None:
                parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
                cls._schema = etree.XMLSchema(etree.parse(str(wsdl_file.parent / "CSDD-Types-v1-0.xsd"), parser))
            return cls._schema


def answer(state: Any, request: etree._Element, wsdl_file: Path) -> tuple[str, bytes]:
    """HTTP status and SOAP answer of one request element (the SOAP Body's child)."""
    schema = VehicleSchema.get(wsdl_file)
    if not schema.validate(etree.fromstring(etree.tostring(request))):
        error = schema.error_log.last_error
        return _fault("Client", f"Request does not match the schema: {error.message if error else '?'}")
    operation = etree.QName(request).localname.removesuffix("Request")

    def value(name: str) -> str | None:
        element = request.find(_q(name))
        return None if element is None else (element.text or "")

    envelope, body = _envelope()
    with state.lock:
        records = dict(state.records)
    if operation == "GetVehicleByPlate":
        response = etree.SubElement(body, _q("GetVehicleByPlateResponse"))
        record = records.get((value("PlateNumber") or "").strip())
        _add(response, "ResultCode", 0 if record else 1)
        if record is None:
            _add(response, "ResultText", NOT_FOUND_TEXT)
        else:
            vehicle_element(response, "Vehicle", record)
        return _ok(envelope)
    if operation == "GetVehicleByVin":
        vin = value("Vin")
        found = [r for r in records.values() if r["vin"] == vin]
        if not found:
            return _fault(VIN_NOT_FOUND_CODE, VIN_NOT_FOUND_TEXT)
        response = etree.SubElement(body, _q("GetVehicleByVinResponse"))
        _add(response, "ResultCode", 0)
        vehicle_element(response, "Vehicle", found[0])
        return _ok(envelope)
    if operation == "FindVehiclesByOwner":
        owner, fuel = value("OwnerPersonCode"), value("Fuel")
        page = int(value("PageNumber") or 1)
        size = min(int(value("PageSize") or DEFAULT_PAGE_SIZE), MAX_PAGE_SIZE)
        if page < 1:
            return _fault("Client", "PageNumber must be 1 or more")
        matches = [records[plate] for plate in sorted(records)
                   if any(o["person_code"] == owner for o in records[plate]["owners"])
                   and (not fuel or records[plate]["technical"]["fuel"] == fuel)]
        chosen = matches[(page - 1) * size:page * size]
        response = etree.SubElement(body, _q("FindVehiclesByOwnerResponse"))
        _add(response, "ResultCode", 0 if matches else 1)
        _add(response, "Total", len(matches))
        _add(response, "PageNumber", page)
        _add(response, "MoreAvailable", page * size < len(matches))
        vehicles = etree.SubElement(response, _q("Vehicles"))
        for record in chosen:
            vehicle_element(vehicles, "Vehicle", record)
        return _ok(envelope)
    if operation == "GetVehicleChanges":
        since = dt.datetime.fromisoformat((value("ChangedSince") or "").replace("Z", "+00:00"))
        size = int(value("PageSize") or 100)
        changes, more = state.changes(since, value("AfterPlateNumber"), size)
        response = etree.SubElement(body, _q("GetVehicleChangesResponse"))
        for at, record in changes:
            change = etree.SubElement(response, _q("Change"))
            _add(change, "ChangedAt", at)
            vehicle_element(change, "Vehicle", record)
        _add(response, "MoreAvailable", more)
        return _ok(envelope)
    return _fault("Client", f"Unknown operation {operation}")
