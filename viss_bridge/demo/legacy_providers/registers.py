"""The demo registers: their contracts (hand-written WSDLs) and Spyne implementations.

The Spyne types below are written to produce exactly the XML the hand-written
WSDL describes (same namespace, element names, order and types); the WSDL a
client downloads is the hand-written file, never Spyne's rendering.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from viss_bridge.demo.legacy_providers.vehicles import TNS_VEHICLES, answer as vehicle_answer
from spyne import (Boolean, ComplexModel, Date, DateTime, Decimal, Integer, ServiceBase, Unicode, rpc)

WSDL_DIR_ENV = "VISS_BRIDGE_WSDL_DIR"


def wsdl_dir() -> Path:
    """The shipped ``wsdl/`` folder (next to the package in a checkout)."""
    override = os.environ.get(WSDL_DIR_ENV)
    if override:
        return Path(override)
    return Path(__file__).resolve().parents[3] / "wsdl"


def wsdl_path(register: str) -> Path:
    return wsdl_dir() / REGISTERS[register].wsdl_file


@dataclass(frozen=True)
class Register:
    name: str  # short name used on the command line and in URLs
    dataset: str  # the demo dataset holding the same records
    key: str  # dataset key field
    tns: str
    wsdl_file: str
    path: str  # URL path the provider serves the service at
    lookup_operation: str
    changes_operation: str
    to_legacy: Callable[[dict[str, Any]], Any]  # dataset record -> Spyne instance (or the record itself)
    service: Callable[[], type[ServiceBase]] | None
    # instead of a Spyne service: (state, request element, WSDL file) -> (HTTP status, SOAP answer)
    answer: Callable[[Any, Any, Path], tuple[str, bytes]] | None = None


# -- persons register (PMLP, Fizisko personu reģistrs) ------------------------------

TNS_PERSONS = "http://ivis.eps.gov.lv/XMLSchemas/PMLP/FizPersonas/v1-0"


def _req(cls: Any) -> Any:
    return cls.customize(min_occurs=1, nillable=False)


def _opt(cls: Any) -> Any:
    return cls.customize(min_occurs=0, nillable=False)


class PersonAddress(ComplexModel):
    __namespace__ = TNS_PERSONS
    __type_name__ = "AddressType"
    _type_info = [("AddressCode", _req(Unicode)), ("AddressKind", _req(Unicode)), ("ValidFrom", _req(Date))]


class Person(ComplexModel):
    __namespace__ = TNS_PERSONS
    __type_name__ = "PersonType"
    _type_info = [
        ("PersonCode", _req(Unicode)), ("GivenName", _req(Unicode)), ("Surname", _req(Unicode)),
        ("BirthDate", _req(Date)), ("Gender", _req(Unicode)), ("Citizenship", _req(Unicode)),
        ("Status", _req(Unicode)), ("DeathDate", _opt(Date)), ("DeclaredAddressCode", _req(Unicode)),
        ("Address", PersonAddress.customize(min_occurs=0, max_occurs="unbounded", nillable=False)),
    ]


class PersonChange(ComplexModel):
    __namespace__ = TNS_PERSONS
    __type_name__ = "PersonChangeType"
    _type_info = [("ChangedAt", _req(DateTime)), ("Person", _req(Person))]


def person_to_legacy(record: dict[str, Any]) -> Person:
    return Person(PersonCode=record["person_code"], GivenName=record["first_name"], Surname=record["last_name"],
                  BirthDate=record["birth_date"], Gender=record["gender"], Citizenship=record["citizenship"],
                  Status=record["status"], DeathDate=record.get("death_date"),
                  DeclaredAddressCode=record["declared_address_code"],
                  Address=[PersonAddress(AddressCode=a["address_code"], AddressKind=a["kind"],
                                         ValidFrom=a["valid_from"]) for a in record.get("addresses") or []])


def _persons_service() -> type[ServiceBase]:
    class FizPersonas(ServiceBase):
        @rpc(_req(Unicode), _args=("PersonCode",), _returns=Person.customize(min_occurs=0, nillable=False),
             _operation_name="GetPerson", _in_message_name="GetPersonRequest",
             _out_message_name="GetPersonResponse", _out_variable_name="Person")
        def GetPerson(ctx, PersonCode):  # type: ignore[no-untyped-def]
            return _state(ctx).lookup(PersonCode)

        @rpc(_req(DateTime), _opt(Unicode), _opt(Integer), _args=("ChangedSince", "AfterPersonCode", "PageSize"),
             _returns=(PersonChange.customize(min_occurs=0, max_occurs="unbounded", nillable=False), _req(Boolean)),
             _out_variable_names=("Change", "MoreAvailable"),
             _operation_name="GetPersonChanges", _in_message_name="GetPersonChangesRequest",
             _out_message_name="GetPersonChangesResponse")
        def GetPersonChanges(ctx, ChangedSince, AfterPersonCode, PageSize):  # type: ignore[no-untyped-def]
            changes, more = _state(ctx).changes(ChangedSince, AfterPersonCode, PageSize)
            return [PersonChange(ChangedAt=at, Person=record) for at, record in changes], more

    return FizPersonas


# -- address register (VZD, Valsts adrešu reģistrs) ------------------------------

TNS_ADDRESSES = "http://ivis.eps.gov.lv/XMLSchemas/VZD/Adreses/v1-0"


class Address(ComplexModel):
    __namespace__ = TNS_ADDRESSES
    __type_name__ = "AddressType"
    _type_info = [
        ("AddressCode", _req(Unicode)), ("FullAddress", _req(Unicode)), ("Street", _req(Unicode)),
        ("House", _req(Unicode)), ("Flat", _opt(Unicode)), ("City", _req(Unicode)),
        ("Municipality", _req(Unicode)), ("PostalCode", _req(Unicode)), ("AtvkCode", _req(Unicode)),
        ("Latitude", _req(Decimal)), ("Longitude", _req(Decimal)),
    ]


class AddressChange(ComplexModel):
    __namespace__ = TNS_ADDRESSES
    __type_name__ = "AddressChangeType"
    _type_info = [("ChangedAt", _req(DateTime)), ("Address", _req(Address))]


def address_to_legacy(record: dict[str, Any]) -> Address:
    return Address(AddressCode=record["address_code"], FullAddress=record["full_address"], Street=record["street"],
                   House=record["house"], Flat=record.get("flat"), City=record["city"],
                   Municipality=record["municipality"], PostalCode=record["postal_code"],
                   AtvkCode=record["atvk_code"], Latitude=record["latitude"], Longitude=record["longitude"])


def _addresses_service() -> type[ServiceBase]:
    class Adreses(ServiceBase):
        @rpc(_req(Unicode), _args=("AddressCode",), _returns=Address.customize(min_occurs=0, nillable=False),
             _operation_name="GetAddress", _in_message_name="GetAddressRequest",
             _out_message_name="GetAddressResponse", _out_variable_name="Address")
        def GetAddress(ctx, AddressCode):  # type: ignore[no-untyped-def]
            return _state(ctx).lookup(AddressCode)

        @rpc(_req(DateTime), _opt(Unicode), _opt(Integer), _args=("ChangedSince", "AfterAddressCode", "PageSize"),
             _returns=(AddressChange.customize(min_occurs=0, max_occurs="unbounded", nillable=False), _req(Boolean)),
             _out_variable_names=("Change", "MoreAvailable"),
             _operation_name="GetAddressChanges", _in_message_name="GetAddressChangesRequest",
             _out_message_name="GetAddressChangesResponse")
        def GetAddressChanges(ctx, ChangedSince, AfterAddressCode, PageSize):  # type: ignore[no-untyped-def]
            changes, more = _state(ctx).changes(ChangedSince, AfterAddressCode, PageSize)
            return [AddressChange(ChangedAt=at, Address=record) for at, record in changes], more

    return Adreses


STATE_KEY = "viss_bridge.provider_state"


def _state(ctx: Any) -> Any:
    return ctx.transport.req_env[STATE_KEY]


REGISTERS: dict[str, Register] = {
    "persons": Register("persons", "fpr_person", "person_code", TNS_PERSONS, "PMLP-FizPersonas-v1-0.wsdl",
                        "/ivis/FizPersonas/v1-0", "GetPerson", "GetPersonChanges", person_to_legacy,
                        _persons_service),
    "addresses": Register("addresses", "vzd_address", "address_code", TNS_ADDRESSES, "VZD-Adreses-v1-0.wsdl",
                          "/ivis/Adreses/v1-0", "GetAddress", "GetAddressChanges", address_to_legacy,
                          _addresses_service),
    "vehicles": Register("vehicles", "csdd_vehicle", "plate", TNS_VEHICLES, "CSDD-Transportlidzekli-v1-0.wsdl",
                         "/ivis/Transportlidzekli/v1-0", "GetVehicleByPlate", "GetVehicleChanges", dict, None,
                         vehicle_answer),
}

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)
