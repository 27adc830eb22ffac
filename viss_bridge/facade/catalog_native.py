"""The catalog-native endpoint (``/catalog``): discover datasets and read them generically.

Where the X-Road face has one operation per dataset, this face has four
operations for all datasets: listDatasets, describeDataset, getRecord and
getChanges (a change feed for paging through everything that changed since a
cursor). Records stay typed: the answer holds one optional element per
dataset, each of that dataset's own record type, so generated clients get
real classes rather than name/value pairs (see :class:`CatalogFacade` for how
that stays cheap to reload).
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

from lxml import etree
from spyne import AnyXml, Boolean, ComplexModel, DateTime, Integer, Integer64, ServiceBase, Unicode, rpc
from spyne.model.complex import SelfReference
from spyne.protocol.xml import XmlDocument

from viss_bridge.access.identity import Authenticator, Caller
from viss_bridge.catalog.catalog import Catalog
from viss_bridge.catalog.manifest import Dataset, Field
from viss_bridge.catalog.store import DatasetStore, StoreUnavailable
from viss_bridge.facade import faults
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.callers import CALLER_ENV, read_caller_header, resolve_caller
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.guarded_read import GuardedRead, narrowed
from viss_bridge.facade.pipeline import HttpAnswer
from viss_bridge.facade.search_paging import search_request, searchable
from viss_bridge.facade.soap_runtime import (SpyneWsdl, REQUEST_CONTEXT, SoapRequest, SoapResponse, bounded_int, make_spyne_wsgi,
                                             run_spyne)
from viss_bridge.facade.spyne_models import RecordModels
from viss_bridge.facade.wsdl_parts import NotBuiltYet, compose_catalog_wsdl, record_schemas
from viss_bridge.xml import NS_SOAP11, local_name

log = logging.getLogger(__name__)

CATALOG_TNS = "http://vissbridge.gov.lv/catalog"
OPERATIONS = ("listDatasets", "describeDataset", "getRecord", "getChanges", "searchRecords")
MAX_PAGE = 1000

_required = {"min_occurs": 1, "nillable": False}
_optional = {"min_occurs": 0, "nillable": False}


class Texts(ComplexModel):
    __namespace__ = CATALOG_TNS
    _type_info = [("lv", Unicode(**_optional)), ("en", Unicode(**_optional))]


class ItemFieldDescription(ComplexModel):
    """A field inside an object or a list of objects; its own ``field`` elements go on to any depth."""

    __namespace__ = CATALOG_TNS
    _type_info = [("name", Unicode(**_required)), ("type", Unicode(**_required)),
                  ("required", Boolean(**_required)), ("description", Unicode(**_optional)),
                  ("maxLength", Integer(**_optional)),
                  ("field", SelfReference.customize(max_occurs="unbounded", **_optional)),
                  # added for objects, lists of values, nillable and enum fields (optional: older clients skip them)
                  ("items", Unicode(**_optional)), ("nillable", Boolean(**_optional)),
                  ("enumValue", Unicode.customize(max_occurs="unbounded", **_optional)),
                  ("xml", Unicode(**_optional))]


class FieldDescription(ComplexModel):
    __namespace__ = CATALOG_TNS
    _type_info = [("name", Unicode(**_required)), ("type", Unicode(**_required)),
                  ("required", Boolean(**_required)), ("description", Unicode(**_optional)),
                  ("maxLength", Integer(**_optional)),
                  ("field", ItemFieldDescription.customize(max_occurs="unbounded", **_optional)),
                  ("items", Unicode(**_optional)), ("nillable", Boolean(**_optional)),
                  ("enumValue", Unicode.customize(max_occurs="unbounded", **_optional))]


class LegacyService(ComplexModel):
    __namespace__ = CATALOG_TNS
    _type_info = [("dialect", Unicode(**_required)), ("service", Unicode(**_required))]


class DatasetSummary(ComplexModel):
    __namespace__ = CATALOG_TNS
    _type_info = [("name", Unicode(**_required)), ("version", Unicode(**_required)),
                  ("title", Texts.customize(**_required)), ("owner", Unicode(**_required)),
                  ("access", Unicode(**_required)), ("records", Integer64(**_optional))]


class DatasetDescription(ComplexModel):
    __namespace__ = CATALOG_TNS
    _type_info = [("name", Unicode(**_required)), ("version", Unicode(**_required)),
                  ("title", Texts.customize(**_required)), ("description", Texts.customize(**_optional)),
                  ("owner", Unicode(**_required)), ("ownerName", Unicode(**_optional)),
                  ("access", Unicode(**_required)),
                  ("key", Unicode.customize(max_occurs="unbounded", **_required)),
                  ("subject", Unicode(**_optional)), ("sourceKind", Unicode(**_required)),
                  ("field", FieldDescription.customize(max_occurs="unbounded", **_required)),
                  ("legacyService", LegacyService.customize(max_occurs="unbounded", **_optional)),
                  # the index paths searchRecords takes as criterion names (optional: older clients skip it)
                  ("index", Unicode.customize(max_occurs="unbounded", **_optional))]


class SearchCriterion(ComplexModel):
    """One criterion of searchRecords: an index path of the dataset (describeDataset lists them) and its value."""

    __namespace__ = CATALOG_TNS
    _type_info = [("name", Unicode(**_required)), ("value", Unicode(**_required))]


class CallerHeader(ComplexModel):
    """SOAP header naming the calling client; it must be the authenticated connection (docs/access.md)."""

    __namespace__ = CATALOG_TNS
    __type_name__ = "caller"
    _type_info = [("client", Unicode(**_required)), ("userId", Unicode(**_optional))]


def _describe_field(field: Field, item_cls: type[ComplexModel]) -> Any:
    """One field as describeDataset tells it, with the fields of objects and lists at every depth."""
    result = item_cls(name=field.name, type=field.type.value, required=field.required,
                      description=field.description or None, maxLength=field.max_length,
                      items=field.items.value if field.items is not None else None,
                      nillable=True if field.nillable else None,
                      enumValue=[str(v) for v in field.enum] if field.enum is not None else None)
    if item_cls is ItemFieldDescription and field.xml != "element":
        result.xml = field.xml
    if field.fields:
        result.field = [_describe_field(f, ItemFieldDescription) for f in field.fields]
    return result


FACADE_ENV = "viss_bridge.catalog_facade"  # the catalog version's facade, for the one Spyne app's operations


class CatalogFacade:
    """One catalog version's catalog-native face.

    The Spyne app (four operations over generic types) is the same for every version and built
    once per process (:func:`_service_app`): a record travels in it as XML the facade writes with
    the dataset's own record type. What is per dataset (the record type, its schema text) is built
    when first needed and kept for the next version while the manifest is unchanged, so a reload
    of one manifest costs that manifest, not the catalog, and no Spyne class is left behind per
    version. The WSDL is the app's WSDL with ``AnyRecord`` (one optional element per dataset, each
    of its dataset's record type) and the datasets' types put in (:mod:`wsdl_parts`).
    """

    def __init__(self, catalog: Catalog, store: DatasetStore, permissions: Any, base_url: str, *,
                 authenticator: Authenticator | None = None, previous: "CatalogFacade | None" = None) -> None:
        self.catalog = catalog
        self.store = store
        self.permissions = permissions
        self.reader = GuardedRead(store, permissions)
        self.base_url = base_url.rstrip("/")
        self.authenticator = authenticator
        self._lock = threading.Lock()
        # Non-key fields are optional here: a permission may read only some of them.
        self._models: dict[str, RecordModels] = {}
        self._schemas: dict[str, tuple[bytes, ...]] = {}
        if previous is not None:  # keep what was built for every dataset whose manifest did not change
            same = {n for n, d in catalog.datasets.items() if previous.catalog.datasets.get(n) is d}
            with previous._lock:
                self._models = {n: m for n, m in previous._models.items() if n in same}
                self._schemas = {n: t for n, t in previous._schemas.items() if n in same}
        self._wsdl: bytes | None = None
        self._wsdl_done = threading.Event()
        # Writes records; one per version: Spyne's writer remembers every class it wrote (a cdict), so a
        # shared one would keep the record types of every manifest version ever served.
        self._xml = XmlDocument()

    @property
    def wsgi(self) -> Any:
        return _service_app()

    # -- per dataset ------------------------------------------------------------------

    def models(self, dataset: Dataset) -> RecordModels:
        """The dataset's record type here (built on its first record, then kept)."""
        with self._lock:
            models = self._models.get(dataset.dataset)
        if models is None:
            models = RecordModels(dataset, CATALOG_TNS, all_optional=True)
            with self._lock:
                models = self._models.setdefault(dataset.dataset, models)
        return models

    def record_element(self, dataset: Dataset, record: dict[str, Any]) -> etree._Element:
        """The record as the element ``<{dataset}>`` of its record type (the one member of AnyRecord it fills)."""
        models = self.models(dataset)
        holder = etree.Element("holder")
        self._xml.to_parent(None, models.record, models.to_instance(record), holder, CATALOG_TNS, dataset.dataset)
        return holder[0]

    # -- WSDL -------------------------------------------------------------------------

    def wsdl(self, wait: float | None = None) -> bytes:
        """The WSDL; ``wait`` None: build it here if needed, else wait that long for :meth:`build_wsdl`
        (the server's watcher builds it beside serving) and raise :class:`NotBuiltYet`."""
        if self._wsdl is not None:
            return self._wsdl
        if wait is None:
            self.build_wsdl()
        elif not self._wsdl_done.wait(wait):
            raise NotBuiltYet("the catalog WSDL is still being built; try again in a few seconds")
        assert self._wsdl is not None
        return self._wsdl

    def build_wsdl(self, stop: Callable[[], bool] | None = None) -> bool:
        """Compose the WSDL, rendering the schema of the datasets that have none yet (in batches; ``stop()``
        between them may end the work early, kept for the next version: then False)."""
        if self._wsdl is not None:
            return True
        datasets = list(self.catalog)
        missing = [d for d in datasets if d.dataset not in self._schemas]
        for first in range(0, len(missing), SCHEMA_BATCH):
            if stop is not None and first and stop():
                return False
            rendered = record_schemas(missing[first:first + SCHEMA_BATCH], CATALOG_TNS)
            with self._lock:
                self._schemas.update(rendered)
        with self._lock:
            schemas = [(d.dataset, self._schemas[d.dataset]) for d in datasets]
        document = compose_catalog_wsdl(_service_wsdl(f"{self.base_url}/catalog"), schemas)
        with self._lock:
            self._wsdl = self._wsdl or document
        self._wsdl_done.set()
        return True

    @property
    def wsdl_built(self) -> bool:
        return self._wsdl is not None

    # -- helpers used by the operations -----------------------------------------

    def _dataset(self, name: str | None) -> Dataset:
        dataset = self.catalog.get(name or "")
        if dataset is None:
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"Unknown dataset: {name}")
        return dataset

    # -- requests ---------------------------------------------------------------

    def handle(self, request: SoapRequest, environ: dict[str, Any], info: CallInfo) -> SoapResponse:
        operation = local_name(request.body_element)
        info.service = info.operation = operation
        read_caller_header(request, CATALOG_TNS, info)
        caller = resolve_caller(environ, self.authenticator, (info.client or "").strip() or None, request)
        info.authenticated_by = caller.authenticated_by
        if request.body_element.tag not in {f"{{{CATALOG_TNS}}}{op}" for op in OPERATIONS}:
            raise BridgeFault(faults.UNKNOWN_SERVICE,
                              f"Unknown operation {request.body_element.tag}; this endpoint offers "
                              f"{', '.join(OPERATIONS)} in namespace {CATALOG_TNS}")
        environ = dict(environ)
        environ[FACADE_ENV] = self
        return run_spyne(self.wsgi, environ, request, info)


SCHEMA_BATCH = 50  # datasets whose schema one throwaway Spyne app renders (bounds its memory; a stop check between)


def _facade(ctx: Any) -> CatalogFacade:
    return ctx.transport.req_env[FACADE_ENV]  # type: ignore[no-any-return]


def _caller(ctx: Any) -> Caller:
    return ctx.transport.req_env.get(CALLER_ENV) or Caller(None, None)


def _info(ctx: Any) -> CallInfo:
    return ctx.transport.req_env[REQUEST_CONTEXT]  # type: ignore[no-any-return]


def _store_failed(exc: Exception) -> BridgeFault:
    log.error("dataset store unavailable: %s", exc)
    return faults.service_failed("DatabaseError", "The dataset store is not available")


# A record in the Spyne app: the element of its dataset's record type, written by the facade. The WSDL
# says AnyRecord there (compose_catalog_wsdl), so clients see typed records, never xs:anyType.
_Record = AnyXml.customize(min_occurs=0, nillable=False)
_Change = ComplexModel.produce(CATALOG_TNS, "Change", {
    "seq": Integer64(**_required), "key": Unicode.customize(max_occurs="unbounded", **_required),
    "changedAt": DateTime(**_required), "deleted": Boolean(**_required),
    "record": _Record,
    # true: the record exists but its data subject restricted its distribution (docs/access.md)
    "withheld": Boolean(**_optional)})
_Page = ComplexModel.produce(CATALOG_TNS, "ChangesPage", {
    "change": _Change.customize(max_occurs="unbounded", **_optional),
    "nextSince": Integer64(**_required), "hasMore": Boolean(**_required)})


@rpc(_returns=DatasetSummary.customize(max_occurs="unbounded", **_optional),
     _operation_name="listDatasets", _out_variable_name="dataset")
def listDatasets(ctx: Any) -> Any:
    facade = _facade(ctx)
    try:
        counts = facade.store.counts()
    except StoreUnavailable as exc:
        raise _store_failed(exc) from None
    return [DatasetSummary(name=d.dataset, version=d.version, title=Texts(lv=d.title.lv, en=d.title.en),
                           owner=d.owner, access=d.access.value, records=counts.get(d.dataset, 0))
            for d in facade.catalog]


@rpc(Unicode(**_required), _args=("dataset",), _returns=DatasetDescription,
     _operation_name="describeDataset", _out_variable_name="description")
def describeDataset(ctx: Any, dataset: str) -> Any:
    facade = _facade(ctx)
    d = facade._dataset(dataset)
    caller = _caller(ctx)
    if not caller.anonymous:  # a client sees the dataset as its permission does
        decision = facade.permissions.decide(caller, d)
        if decision.allowed:
            d = narrowed(d, decision.fields)
    return DatasetDescription(
        name=d.dataset, version=d.version, title=Texts(lv=d.title.lv, en=d.title.en),
        description=Texts(lv=d.description.lv, en=d.description.en) if d.description else None,
        owner=d.owner, ownerName=d.owner_name, access=d.access.value, key=list(d.key), subject=d.subject,
        sourceKind=d.source.kind, field=[_describe_field(f, FieldDescription) for f in d.fields],
        legacyService=[LegacyService(dialect=c.dialect, service=c.service) for c in d.legacy] or None,
        index=searchable(d) or None)


@rpc(Unicode(**_required), Unicode.customize(max_occurs="unbounded", **_required),
     _args=("dataset", "key"), _returns=_Record, _operation_name="getRecord", _out_variable_name="record")
def getRecord(ctx: Any, dataset: str, key: list[str]) -> Any:
    facade = _facade(ctx)
    d = facade._dataset(dataset)
    decision = facade.reader.decide(_caller(ctx), d)
    key = list(key or [])
    if len(key) != len(d.key):
        raise BridgeFault(faults.INVALID_REQUEST, f"Dataset {d.dataset} has a key of {len(d.key)} part(s) "
                                                  f"({', '.join(d.key)}); {len(key)} given")
    record = facade.reader.lookup(decision, d, dict(zip(d.key, key)), _info(ctx))
    return facade.record_element(d, record) if record is not None else None


@rpc(Unicode(**_required), Integer64(**_optional), Integer(**_optional), _args=("dataset", "since", "limit"),
     _returns=_Page, _operation_name="getChanges", _out_variable_name="page")
def getChanges(ctx: Any, dataset: str, since: int | None, limit: int | None) -> Any:
    facade = _facade(ctx)
    d = facade._dataset(dataset)
    decision = facade.reader.decide(_caller(ctx), d)
    # an absent limit is 100; limit=0 is refused, never silently 100
    since = bounded_int(since, "since", 0, default=0)
    limit = bounded_int(limit, "limit", 1, MAX_PAGE, default=100)
    items, more = facade.reader.feed(decision, d, lambda n: facade.store.changes(d, since, n), limit, _info(ctx))
    page = [_Change(seq=i.change.seq, key=i.change.key.split("\x1f"), changedAt=i.change.changed_at,
                    deleted=i.change.record is None,
                    record=facade.record_element(d, i.record) if i.record is not None else None,
                    withheld=True if i.withheld else None) for i in items]
    return _Page(change=page, nextSince=items[-1].change.seq if items else since, hasMore=more)


_SearchPage = ComplexModel.produce(CATALOG_TNS, "SearchPage", {
    "record": AnyXml.customize(max_occurs="unbounded", **_optional),
    # every match the caller may see: records of persons who restricted the register are not counted
    "total": Integer64(**_required), "page": Integer(**_optional), "pageSize": Integer(**_required),
    "nextCursor": Unicode(**_optional), "hasMore": Boolean(**_required)})


@rpc(Unicode(**_required), SearchCriterion.customize(max_occurs="unbounded", **_optional),
     Integer(**_optional), Integer(**_optional), Unicode(**_optional),
     _args=("dataset", "criterion", "page", "pageSize", "cursor"), _returns=_SearchPage,
     _operation_name="searchRecords", _out_variable_name="result")
def searchRecords(ctx: Any, dataset: str, criterion: list[Any] | None, page: int | None,
                  pageSize: int | None, cursor: str | None) -> Any:
    facade = _facade(ctx)
    d = facade._dataset(dataset)
    decision = facade.reader.decide(_caller(ctx), d)
    criteria: dict[str, Any] = {}
    for item in criterion or []:
        if item.name in criteria:
            raise BridgeFault(faults.INVALID_REQUEST, f"criterion '{item.name}' is given twice")
        criteria[item.name or ""] = item.value
    request = search_request(criteria, page, pageSize, cursor, names=("page", "pageSize", "cursor"))
    found = facade.reader.search(decision, d, request, _info(ctx))
    return _SearchPage(record=[facade.record_element(d, r) for r in found.records], total=found.total,
                       page=found.page, pageSize=request.page_size, nextCursor=found.next_cursor,
                       hasMore=found.next_cursor is not None)


_app_lock = threading.Lock()
_app: dict[str, Any] = {}


def _service_app() -> Any:
    """The catalog-native Spyne app: the same for every catalog version, so built once per process."""
    with _app_lock:
        if "wsgi" not in _app:
            body = {"__in_header__": CallerHeader, "listDatasets": listDatasets, "describeDataset": describeDataset,
                    "getRecord": getRecord, "getChanges": getChanges,
                    "searchRecords": searchRecords}
            _app["wsgi"] = make_spyne_wsgi([type("CatalogService", (ServiceBase,), body)], CATALOG_TNS,
                                           "viss_bridge_catalog")
        return _app["wsgi"]


def _service_wsdl(location: str) -> bytes:
    """The app's own WSDL for ``location`` (records as xs:anyType: compose_catalog_wsdl types them)."""
    with _app_lock:
        document = _app.get(("wsdl", location))
    if document is None:
        document = SpyneWsdl(_service_app(), location)()
        with _app_lock:
            _app[("wsdl", location)] = document
    return document  # type: ignore[no-any-return]


class CatalogEndpoint:
    """``/catalog``: the current catalog version's catalog-native facade."""

    name = "catalog"
    soap_ns = NS_SOAP11

    def handle(self, published: Any, request: SoapRequest, environ: dict[str, Any], info: CallInfo) -> SoapResponse:
        return published.native.handle(request, environ, info)

    def __init__(self, wsdl_wait: float | None = None) -> None:
        # None: a request builds the WSDL itself; seconds: the server's watcher builds it, a request waits that long
        self.wsdl_wait = wsdl_wait

    def wsdl(self, published: Any, environ: dict[str, Any], query: dict[str, list[str]]) -> HttpAnswer:
        try:
            return HttpAnswer.xml(published.native.wsdl(wait=self.wsdl_wait))
        except NotBuiltYet as exc:
            return HttpAnswer(503, f"{exc}\n".encode(), headers=[("Retry-After", "5")])
