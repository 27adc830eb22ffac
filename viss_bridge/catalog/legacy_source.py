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
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field as PydField

# the field mapping (nested elements, lists, attributes, constants) is the contract mapping format's
from viss_bridge.catalog.contract_mapping import (ELEMENT, ElementMapping, ElementName, FieldMap, ListMapping,
                                                   map_to_dataset, map_to_legacy, mapping_problems)

__all__ = ["ELEMENT", "ElementMapping", "ElementName", "FieldMap", "ListMapping", "LegacySoapSource",
           "map_to_dataset", "map_to_legacy", "mapping_problems", "since_text"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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


def since_text(value: dt.datetime) -> str:
    return value.astimezone(dt.timezone.utc).isoformat().replace("+00:00", "Z")
