"""``source.kind: legacy_soap``: a dataset answered by a generation-II SOAP operation.

Configuration only (this package imports nothing else of the project); the
``upstream`` package turns it into zeep calls and ``facade.legacy_contract``
reuses the field mapping to serve old contracts. Example::

    source:
      kind: legacy_soap
      mode: live                 # live: every lookup calls the provider; replicated: `viss-bridge sync` fills the store
      provider: pmlp-fpr         # one shared zeep client, breaker and concurrency cap per provider name
      wsdl: ../wsdl/PMLP-FizPersonas-v1-0.wsdl   # file (relative to the manifest) or http(s) URL
      address: http://127.0.0.1:8091/ivis/FizPersonas/v1-0   # overrides the WSDL's soap:address
      lookup:
        operation: GetPerson
        request: {PersonCode: person_code}      # request element -> dataset key field
        result: Person                          # response element holding the record
      changes:                                  # needed for mode: replicated
        operation: GetPersonChanges
        since: ChangedSince
        after_key: AfterPersonCode
        page_size_element: PageSize
        page_size: 200
        items: Change
        record: Person
        changed_at: ChangedAt
        more: MoreAvailable
      fields:                                   # legacy element -> dataset field
        PersonCode: person_code
        Address: {field: addresses, fields: {AddressCode: address_code}}
      timeouts: {connect: 2, operation: 10}
      retries: {attempts: 3, backoff: 0.2}
      breaker: {failures: 5, reset_after: 30}
      max_concurrent: 8
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field as PydField

ELEMENT = r"^[A-Za-z_][A-Za-z0-9_.-]*$"
ElementName = Annotated[str, PydField(pattern=ELEMENT)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ListMapping(_Strict):
    """A repeated legacy element mapped to a list field, with the mapping of its children."""

    field: str
    fields: dict[ElementName, Union[str, "ListMapping"]]


FieldMap = dict[ElementName, Union[str, ListMapping]]


class Lookup(_Strict):
    operation: ElementName
    request: Annotated[dict[ElementName, str], PydField(min_length=1)]
    result: ElementName


class Changes(_Strict):
    operation: ElementName
    since: ElementName
    after_key: ElementName | None = None
    page_size_element: ElementName | None = None
    page_size: Annotated[int, PydField(gt=0, le=10000)] = 200
    items: ElementName
    record: ElementName
    changed_at: ElementName
    more: ElementName | None = None


class Timeouts(_Strict):
    connect: Annotated[float, PydField(gt=0, le=120)] = 3.0
    operation: Annotated[float, PydField(gt=0, le=600)] = 10.0


class Retries(_Strict):
    attempts: Annotated[int, PydField(ge=1, le=10)] = 3  # tries in all, for reads; writes are tried once
    backoff: Annotated[float, PydField(ge=0, le=30)] = 0.2  # seconds before the 2nd try, doubling


class Breaker(_Strict):
    failures: Annotated[int, PydField(ge=1, le=1000)] = 5  # consecutive failures that open it
    reset_after: Annotated[float, PydField(gt=0, le=3600)] = 30.0  # seconds open before one probe


class Signing(_Strict):
    cert: str  # PEM files, relative to the manifest
    key: str


class Security(_Strict):
    """WS-Security towards the provider: sign requests, verify signed responses."""

    sign: Signing | None = None
    trusted: tuple[str, ...] = ()  # CA certificates (PEM) that response signers must chain to
    pinned: tuple[str, ...] = ()  # the provider's own certificate(s): if set, only these may sign responses
    require_signed_response: bool = False


class LegacySoapSource(_Strict):
    kind: Literal["legacy_soap"]
    mode: Literal["live", "replicated"] = "live"
    provider: Annotated[str, PydField(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    wsdl: Annotated[str, PydField(min_length=1)]
    address: Annotated[str, PydField(pattern=r"^https?://")] | None = None
    lookup: Lookup
    changes: Changes | None = None
    fields: Annotated[FieldMap, PydField(min_length=1)]
    timeouts: Timeouts = Timeouts()
    retries: Retries = Retries()
    breaker: Breaker = Breaker()
    max_concurrent: Annotated[int, PydField(ge=1, le=1000)] = 8
    security: Security = Security()

    def settings_key(self) -> str:
        """What must be equal for two datasets to share one provider client."""
        return self.model_dump_json(include={"provider", "wsdl", "address", "timeouts", "retries", "breaker",
                                             "max_concurrent", "security"})


def map_to_dataset(mapping: FieldMap, legacy: dict[str, Any] | None) -> dict[str, Any]:
    """Legacy element values (as zeep gives them, serialised to dicts) -> dataset field values."""
    result: dict[str, Any] = {}
    if not legacy:
        return result
    for element, target in mapping.items():
        value = legacy.get(element)
        if isinstance(target, ListMapping):
            items = value if isinstance(value, list) else ([] if value is None else [value])
            result[target.field] = [map_to_dataset(target.fields, item) for item in items]
        else:
            result[target] = value
    return result


def map_to_legacy(mapping: FieldMap, record: dict[str, Any]) -> dict[str, Any]:
    """Dataset record -> legacy element values (the inverse of :func:`map_to_dataset`)."""
    result: dict[str, Any] = {}
    for element, target in mapping.items():
        if isinstance(target, ListMapping):
            result[element] = [map_to_legacy(target.fields, item) for item in record.get(target.field) or []]
        else:
            value = record.get(target)
            if value is not None:
                result[element] = value
    return result


def mapping_problems(mapping: FieldMap, fields: tuple[Any, ...], path: tuple[str, ...] = ("fields",)
                     ) -> list[tuple[tuple[str, ...], str]]:
    """Check a mapping against dataset fields: (path in the YAML, message) per problem."""
    by_name = {f.name: f for f in fields}
    problems: list[tuple[tuple[str, ...], str]] = []
    mapped: set[str] = set()
    for element, target in mapping.items():
        name = target.field if isinstance(target, ListMapping) else target
        field = by_name.get(name)
        if field is None:
            problems.append((path + (element,), f"maps to '{name}', which is not a dataset field "
                                                f"(fields: {', '.join(by_name)})"))
            continue
        if name in mapped:
            problems.append((path + (element,), f"dataset field '{name}' is mapped twice"))
        mapped.add(name)
        # a list of objects maps element by element; values, lists of values and objects map by name
        is_list = field.type.value == "list" and field.fields is not None
        if isinstance(target, ListMapping):
            if not is_list:
                problems.append((path + (element,), f"'{name}' is not a list field; map it to a name, not {{field, fields}}"))
            else:
                problems.extend(mapping_problems(target.fields, field.fields, path + (element, "fields")))
        elif is_list:
            problems.append((path + (element,), f"'{name}' is a list field; map it as {{field: {name}, fields: {{...}}}}"))
    for field in fields:
        if field.required and field.name not in mapped:
            problems.append((path, f"required dataset field '{field.name}' is not mapped from any legacy element"))
    return problems


def since_text(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
