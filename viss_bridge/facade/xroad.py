"""The X-Road 4.0 endpoint (``/xroad``): every dataset is a service named by its serviceCode.

Routing follows the ``service`` header, as a security server does; the body's
wrapper element must agree with it. The answer echoes every request header in
order (plus ``requestHash``, binding the answer to the request) and is typed
by the dataset's manifest. Metaservices (listMethods, allowedMethods,
getWsdl) are answered here without Spyne because they live in the X-Road
namespace, not the datasets'.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from lxml import etree
from spyne import Integer, Integer64, ServiceBase, Unicode, rpc
from spyne.interface.wsdl import Wsdl11

from viss_bridge.access.identity import Authenticator, Caller
from viss_bridge.access.policy import Decision
from viss_bridge.catalog.catalog import Catalog
from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.search import PAGING_ELEMENTS, criterion_element, end_field
from viss_bridge.catalog.store import DatasetStore
from viss_bridge.facade import faults
from viss_bridge.facade.callers import resolve_caller
from viss_bridge.facade.exchange import CallInfo
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.guarded_read import GuardedRead, Permissions, narrowed, refuse_unreadable_criteria
from viss_bridge.facade.search_paging import search_request, searchable
from viss_bridge.facade.pipeline import HttpAnswer
from viss_bridge.facade.replay import ReplayTable
from viss_bridge.facade.soap_runtime import (SoapRequest, SoapResponse, REQUEST_CONTEXT, forget_rendered_classes,
                                             make_spyne_wsgi, render_wsdl,
                                             run_spyne)
from viss_bridge.facade.spyne_models import RecordModels, scalar_type
from viss_bridge.facade.xroad_fast import FastLookup, unsupported
from viss_bridge.facade.xroad_headers import NS_ID, NS_XROAD, XRoadHeader, XRoadId, parse_header
from viss_bridge.facade.wsdl_parts import NotBuiltYet
from viss_bridge.facade.xroad_wsdl import HIDDEN_ENDPOINT, Frame, ServiceParts, add_xroad_headers, service_parts
from viss_bridge.xml import NS_SOAP11, local_name

log = logging.getLogger(__name__)

XROAD_TNS = "http://vissbridge.gov.lv/xroad/datasets"
METASERVICES = ("listMethods", "allowedMethods", "getWsdl")
SEARCH_SUFFIX = "Search"  # <dataset>Search: the search service of a dataset with indexes
SHA512_URI = "http://www.w3.org/2001/04/xmlenc#sha512"
# With WS-Security, these X-Road headers (when present) must be covered by the signature.
SIGNED_HEADERS = tuple(f"{{{NS_XROAD}}}{name}" for name in ("client", "service", "id", "userId", "issue"))


class XRoadHandler(Protocol):
    """Answers some X-Road calls (X-Road's ServiceHandler: ``canHandle``, then ``handle``)."""

    def can_handle(self, call: "XRoadCall") -> bool: ...

    def handle(self, call: "XRoadCall", request: SoapRequest, environ: dict[str, Any]) -> SoapResponse: ...


@dataclass
class _Handler:
    matches: Callable[["XRoadCall"], bool]
    answer: Callable[["XRoadCall", SoapRequest, dict[str, Any]], SoapResponse]

    def can_handle(self, call: "XRoadCall") -> bool:
        return self.matches(call)

    def handle(self, call: "XRoadCall", request: SoapRequest, environ: dict[str, Any]) -> SoapResponse:
        return self.answer(call, request, environ)


@dataclass
class XRoadCall:
    """One request as the facade understood it; read by Spyne handlers and by the caller for logs."""

    request: SoapRequest
    header: XRoadHeader
    info: CallInfo
    dataset: Dataset | None = None
    found: bool | None = None
    caller: Caller | None = None
    decision: Decision | None = None

    def response_header(self) -> list[etree._Element]:
        elements = [e.__copy__() for e in self.header.elements]  # lxml: a deep copy, without copy.deepcopy's dispatch
        request_hash = etree.Element(f"{{{NS_XROAD}}}requestHash", nsmap={"xrd": NS_XROAD})
        request_hash.set("algorithmId", SHA512_URI)
        request_hash.text = base64.b64encode(hashlib.sha512(self.request.raw).digest()).decode()
        elements.append(request_hash)
        return elements


class XRoadFacade:
    """Built once per catalog version; serves every dataset of that catalog."""

    def __init__(self, catalog: Catalog, store: DatasetStore, permissions: Permissions, instance: str,
                 base_url: str, *, authenticator: Authenticator | None = None, tracker_service: Any = None,
                 previous: "XRoadFacade | None" = None,
                 replay: ReplayTable | None = None, fast_lookups: bool = True) -> None:
        self.catalog = catalog
        self.store = store
        self.permissions = permissions
        self.reader = GuardedRead(store, permissions)
        self.instance = instance
        self.base_url = base_url.rstrip("/")
        self.authenticator = authenticator
        # Ids of accepted WS-Security signed requests (the signed ``id`` header), shared by workers and nodes.
        self.replay = replay
        # The data tracker services (findUsage...) answered for the bridge's own provider id.
        self.tracker_service = tracker_service
        self._owners = set(catalog.owners())
        # Who answers a call, first match wins: the data tracker (the bridge's own services), the
        # metaservices, then the datasets (which also answer "unknown service").
        self.handlers: list[XRoadHandler] = [
            *([tracker_service] if tracker_service is not None else []),
            _Handler(lambda call: call.header.service.service_code in METASERVICES, self._metaservice),
            _Handler(lambda call: True, self._dataset_call)]
        # Built on first use, per dataset: a node with all of VISS (745 services) starts without building
        # 745 Spyne services, and a reload rebuilds only what changed (``previous``: the version before).
        self._models_cache: dict[str, RecordModels] = {}
        # Spyne apps per (dataset, readable fields or None for all): one service each.
        self._apps: dict[tuple[str, tuple[str, ...] | None], Any] = {}
        # Lookups answered without Spyne per request (xroad_fast), per (dataset, readable fields); None: this
        # dataset's lookups stay on Spyne. ``fast_lookups`` False: every call goes through Spyne (tests compare).
        self.fast_lookups = fast_lookups
        self._fast: dict[tuple[str, str, tuple[str, ...] | None], FastLookup | None] = {}
        self._wsdl_cache: dict[tuple[Any, ...], bytes] = {}
        # The whole WSDL is composed from each service's own parts (xroad_wsdl.Frame), never from one
        # Spyne app of every service; parts per (dataset, readable fields), frames per address.
        self._parts: dict[tuple[str, tuple[str, ...] | None], ServiceParts] = {}
        self._frames: dict[str, Frame] = {}
        self._whole: bytes | None = None
        self._whole_done = threading.Event()
        self._lock = threading.Lock()
        self._building: dict[tuple[Any, ...], threading.Lock] = {}
        if previous is not None:
            self._adopt(previous)

    def _adopt(self, previous: "XRoadFacade") -> None:
        """Keep the built parts of every dataset whose manifest did not change (the very same Dataset)."""
        same = {name for name, d in self.catalog.datasets.items() if previous.catalog.datasets.get(name) is d}
        everything = tuple(sorted(previous.catalog.datasets))
        with previous._lock:
            self._models_cache = {n: m for n, m in previous._models_cache.items() if n in same}
            self._apps = {k: app for k, app in previous._apps.items() if k[0] in same}
            self._fast = {k: fast for k, fast in previous._fast.items() if k[1] in same}
            self._wsdl_cache = {k: w for k, w in previous._wsdl_cache.items()
                                if k[0] != everything and all(n in same for n in k[0])}
            self._parts = {k: p for k, p in previous._parts.items() if k[0] in same}
            self._frames = dict(previous._frames)

    def _once(self, key: tuple[Any, ...], cache: dict[Any, Any], build: Callable[[], Any]) -> Any:
        """``cache[key]``, built by one thread while others wait for that key only (never for a reload)."""
        with self._lock:
            if key in cache:
                return cache[key]
            gate = self._building.setdefault(key, threading.Lock())
        with gate:
            with self._lock:
                if key in cache:
                    return cache[key]
            value = build()
            with self._lock:
                cache[key] = value
                self._building.pop(key, None)
            return value

    # -- Spyne service ---------------------------------------------------------

    def _service_class(self, datasets: list[Dataset], fields: dict[str, tuple[str, ...] | None] | None = None,
                       fresh: bool = False) -> type[ServiceBase]:
        """One Spyne service of these datasets' operations; ``fresh``: with record types of its own (to render
        a WSDL and drop), not the cached ones that answer calls."""
        body: dict[str, Any] = {}
        for dataset in datasets:
            readable = (fields or {}).get(dataset.dataset)
            models = self._models(dataset, readable, fresh)  # one record type for both operations of the dataset
            body[dataset.dataset] = self._operation(dataset, readable, models)
            if dataset.indexes:
                body[search_code(dataset)] = self._search_operation(dataset, readable, models)
        return type("XRoadDatasets", (ServiceBase,), body)

    def _models(self, dataset: Dataset, fields: tuple[str, ...] | None, fresh: bool = False) -> RecordModels:
        if fields is None:
            return RecordModels(dataset, XROAD_TNS) if fresh else self._model_of(dataset)
        return RecordModels(narrowed(dataset, fields), XROAD_TNS)

    def _model_of(self, dataset: Dataset) -> RecordModels:
        with self._lock:
            models = self._models_cache.get(dataset.dataset)
        if models is None:
            models = RecordModels(dataset, XROAD_TNS)
            with self._lock:
                models = self._models_cache.setdefault(dataset.dataset, models)
        return models

    def _operation(self, dataset: Dataset, fields: tuple[str, ...] | None = None,
                   models: RecordModels | None = None) -> Any:
        models = models or self._models(dataset, fields)
        reader = self.reader
        key_names = tuple(dataset.key)
        key_types = [scalar_type(f, required=True) for f in dataset.key_fields]

        def lookup(ctx: Any, *keys: Any) -> Any:
            call: XRoadCall = ctx.transport.req_env[REQUEST_CONTEXT]
            assert call.decision is not None  # decided in handle(), before Spyne runs
            record = reader.lookup(call.decision, dataset, dict(zip(key_names, keys)), call.info)
            call.found = record is not None
            return models.to_instance(record) if record is not None else None

        lookup.__name__ = dataset.dataset
        return rpc(*key_types, _args=key_names, _returns=models.record.customize(min_occurs=0),
                   _operation_name=dataset.dataset, _in_message_name=dataset.dataset,
                   _out_message_name=f"{dataset.dataset}Response", _out_variable_name="record")(lookup)

    def _search_operation(self, dataset: Dataset, fields: tuple[str, ...] | None, models: RecordModels) -> Any:
        """``<dataset>Search``: typed criteria (one optional element per readable index), paging, and
        the answer's records, total, page, next cursor (docs/endpoints.md)."""
        reader = self.reader
        paths = searchable(narrowed(dataset, fields))
        elements = [criterion_element(p) for p in paths]
        criteria_types = []
        for path in paths:
            end = end_field(dataset, path)
            scalar = end.item_field if end.is_value_list else end
            criteria_types.append(scalar_type(scalar.model_copy(update={"enum": None, "nillable": False}),
                                              required=False))
        code = search_code(dataset)

        def search(ctx: Any, *values: Any) -> Any:
            call: XRoadCall = ctx.transport.req_env[REQUEST_CONTEXT]
            assert call.decision is not None  # decided in handle(), before Spyne runs
            criteria = {p: v for p, v in zip(paths, values[:len(paths)]) if v is not None}
            page, page_size, cursor = values[len(paths):]
            request = search_request(criteria, page, page_size, cursor, names=("page", "pageSize", "cursor"))
            found = reader.search(call.decision, dataset, request, call.info)
            call.found = bool(found.records)
            return ([models.to_instance(r) for r in found.records], found.total, found.page, request.page_size,
                    found.next_cursor)

        search.__name__ = code
        return rpc(*criteria_types, Integer(min_occurs=0, nillable=False), Integer(min_occurs=0, nillable=False),
                   Unicode(min_occurs=0, nillable=False),
                   _args=(*elements, "page", "pageSize", "cursor"),
                   _returns=(models.record.customize(min_occurs=0, max_occurs="unbounded"),
                             Integer64(min_occurs=1, nillable=False), Integer(min_occurs=0, nillable=False),
                             Integer(min_occurs=1, nillable=False), Unicode(min_occurs=0, nillable=False)),
                   _out_variable_names=("record", "total", "page", "pageSize", "nextCursor"),
                   _operation_name=code, _in_message_name=code, _out_message_name=f"{code}Response")(search)

    def _app_for(self, dataset: Dataset, fields: tuple[str, ...] | None) -> Any:
        """The Spyne app answering ``dataset`` for a permission reading ``fields`` (built once, then cached)."""
        readable = tuple(sorted(fields)) if fields is not None else None
        return self._once((dataset.dataset, readable), self._apps, lambda: make_spyne_wsgi(
            [self._service_class([dataset], {dataset.dataset: readable})], XROAD_TNS, "viss_bridge_xroad",
            echo_header=True))

    # -- requests --------------------------------------------------------------

    def handle(self, request: SoapRequest, environ: dict[str, Any], info: CallInfo) -> SoapResponse:
        """Check headers, route and answer. BridgeFaults propagate to the caller's fault writer."""
        header = parse_header(request.header)
        call = XRoadCall(request=request, header=header, info=info)
        service = header.service
        info.client, info.service, info.operation = header.client.provider, str(service), service.service_code
        info.message_id, info.user_id = header.message_id, header.user_id
        wrapper = local_name(request.body_element)
        if wrapper != service.service_code:
            raise BridgeFault(faults.INCONSISTENT_HEADERS,
                              f"The body element '{wrapper}' does not match serviceCode '{service.service_code}'")
        self.check_instance(service)
        call.caller = resolve_caller(environ, self.authenticator, header.client.provider, request,
                                     signed_headers=SIGNED_HEADERS, replay=self.replay,
                                     message_id=header.message_id, scope="xroad")
        info.authenticated_by = call.caller.authenticated_by
        # Like a security server's message processor: the first handler that can answer the call does.
        for handler in self.handlers:
            if handler.can_handle(call):
                return handler.handle(call, request, environ)
        raise BridgeFault(faults.UNKNOWN_SERVICE, f"Unknown service: {service}")  # the dataset handler takes the rest

    # -- the one mapping of X-Road service identifiers to datasets (/xroad and /r1) ---------------------

    def check_instance(self, service: XRoadId) -> None:
        if service.instance != self.instance:
            raise BridgeFault(faults.UNKNOWN_MEMBER,
                              f"X-Road instance '{service.instance}' is not served here (this bridge serves '{self.instance}')")

    def known_provider(self, service: XRoadId) -> None:
        if service.provider not in self._owners:
            raise BridgeFault(faults.UNKNOWN_MEMBER, f"Provider '{service.provider}' is not known to this bridge")

    def is_provider(self, provider: str) -> bool:
        return provider in self._owners

    def service_dataset(self, service: XRoadId, *, searches: bool = False) -> Dataset:
        """The dataset a service identifier names: its owner is the provider, its name the serviceCode.

        ``searches`` (/xroad): ``<dataset>Search`` names the search service of a dataset with indexes
        (/r1 searches with query parameters on the dataset's own path instead).
        """
        self.known_provider(service)
        code = service.service_code or ""
        dataset = self.catalog.get(code)
        if dataset is None and searches and code.endswith(SEARCH_SUFFIX):
            dataset = self.catalog.get(code.removesuffix(SEARCH_SUFFIX))
            if dataset is not None and not dataset.indexes:
                dataset = None
        if dataset is None or dataset.owner != service.provider:
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"Unknown service: {service}")
        if service.service_version and service.service_version != dataset.version:
            raise BridgeFault(faults.UNKNOWN_SERVICE,
                              f"Unknown service version: {service} (this bridge serves {dataset.version})")
        return dataset

    def services_of(self, provider: str) -> list[Dataset]:
        """The datasets (services) a provider offers, as listMethods lists them."""
        return [d for d in self.catalog if d.owner == provider]

    @staticmethod
    def service_id(dataset: Dataset, code: str | None = None, version: bool = True) -> XRoadId:
        parts = dataset.owner_parts
        return XRoadId("SERVICE", parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else None,
                       code or dataset.dataset, dataset.version if version else None)

    def _known_provider(self, call: XRoadCall) -> None:
        self.known_provider(call.header.service)

    def _dataset_call(self, call: XRoadCall, request: SoapRequest, environ: dict[str, Any]) -> SoapResponse:
        """A lookup (or a search) of one dataset: decided here, answered by Spyne through the guarded read."""
        service = call.header.service
        code = service.service_code or ""
        dataset = self.service_dataset(service, searches=True)
        searching = code != dataset.dataset
        if request.body_element.tag != f"{{{XROAD_TNS}}}{code}":
            raise BridgeFault(faults.INVALID_REQUEST,
                              f"The body element must be in namespace {XROAD_TNS} (see the service WSDL)")
        decision = self.reader.decide(call.caller, dataset)
        if searching:
            self._check_criteria(request.body_element, dataset, decision.fields)
        call.dataset, call.decision = dataset, decision
        fast = None if searching or not self.fast_lookups else self._fast_for(dataset, decision.fields)
        if fast is not None:
            reader, info = self.reader, call.info
            answered = fast.answer(request.body_element, lambda keys: reader.lookup(decision, dataset, keys, info),
                                   call.response_header)
            if answered is not None:
                response, found = answered
                if found is not None:
                    call.found = found
                return response
        return run_spyne(self._app_for(dataset, decision.fields), environ, request, call)

    def _fast_for(self, dataset: Dataset, fields: tuple[str, ...] | None) -> FastLookup | None:
        """The lookup without Spyne for a permission reading ``fields``; None when the dataset is not supported
        (decided once per dataset and field set, logged once)."""
        readable = tuple(sorted(fields)) if fields is not None else None

        def build() -> FastLookup | None:
            reason = unsupported(dataset)
            if reason is not None:
                log.info("X-Road lookups of %s go through Spyne: %s", dataset.dataset, reason)
                return None
            return FastLookup(narrowed(dataset, readable), XROAD_TNS, tuple(dataset.key))

        return self._once(("fast", dataset.dataset, readable), self._fast, build)  # type: ignore[no-any-return]

    @staticmethod
    def _check_criteria(body: etree._Element, dataset: Dataset, fields: tuple[str, ...] | None) -> None:
        """Refuse what Spyne would silently drop: an element that is no criterion (Client.InvalidRequest), and a
        criterion on a field the permission does not read (AccessDenied naming it, as on every face)."""
        paths = {criterion_element(p): p for p in dataset.indexes}
        for child in body:
            if not isinstance(child.tag, str):
                continue
            name = local_name(child)
            if name in PAGING_ELEMENTS:
                continue
            if name not in paths or etree.QName(child).namespace not in (None, XROAD_TNS):
                raise BridgeFault(faults.INVALID_REQUEST, f"'{name}' is no criterion of {search_code(dataset)}; it "
                                  f"takes {', '.join(sorted(paths))} and page, pageSize or cursor")
            refuse_unreadable_criteria(dataset, fields, [paths[name]])

    def readable_fields(self, caller: Caller | str | None,
                        datasets: list[Dataset]) -> dict[str, tuple[str, ...] | None]:
        """For a WSDL: each dataset the caller may call, with the fields its permission reads."""
        result: dict[str, tuple[str, ...] | None] = {}
        for dataset in datasets:
            decision = self.permissions.decide(caller, dataset)
            if decision.allowed:
                result[dataset.dataset] = decision.fields
        return result

    # -- metaservices ----------------------------------------------------------

    def _metaservice(self, call: XRoadCall, request: SoapRequest, environ: dict[str, Any] | None = None) -> SoapResponse:
        self._known_provider(call)
        code = call.header.service.service_code
        if request.body_element.tag != f"{{{NS_XROAD}}}{code}":
            raise BridgeFault(faults.INVALID_REQUEST, f"The body of {code} must be the element xrd:{code}")
        provided = self.services_of(call.header.service.provider)
        if code == "getWsdl":
            return self._get_wsdl(call, request, provided)
        if code == "allowedMethods":
            provided = self.permissions.allowed(call.caller, provided)
        envelope, body = self._response_envelope(call)
        result = etree.SubElement(body, f"{{{NS_XROAD}}}{code}Response")
        for dataset in provided:
            result.append(self.service_id(dataset).to_element(f"{{{NS_XROAD}}}service"))
            if dataset.indexes:
                result.append(self.service_id(dataset, search_code(dataset)).to_element(f"{{{NS_XROAD}}}service"))
        return SoapResponse(200, etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"))

    def _response_envelope(self, call: XRoadCall) -> tuple[etree._Element, etree._Element]:
        envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope",
                                 nsmap={"SOAP-ENV": NS_SOAP11, "xrd": NS_XROAD, "id": NS_ID})
        header = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Header")
        for element in call.response_header():
            header.append(element)
        body = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")
        return envelope, body

    def _get_wsdl(self, call: XRoadCall, request: SoapRequest, provided: list[Dataset]) -> SoapResponse:
        code = request.body_element.findtext(f"{{{NS_XROAD}}}serviceCode")
        version = request.body_element.findtext(f"{{{NS_XROAD}}}serviceVersion")
        if not code:
            raise BridgeFault(faults.INVALID_REQUEST, "getWsdl needs a serviceCode")
        dataset = next((d for d in provided if code.strip() in services_of(d)), None)
        if dataset is None or (version and version.strip() != dataset.version):
            raise BridgeFault(faults.UNKNOWN_SERVICE, f"Unknown service: {call.header.service.provider}/{code}")
        fields = None
        if call.caller is not None and not call.caller.anonymous:
            fields = self.readable_fields(call.caller, [dataset]) or None
        wsdl = self.wsdl([dataset.dataset], location=HIDDEN_ENDPOINT, fields=fields)
        envelope, body = self._response_envelope(call)
        result = etree.SubElement(body, f"{{{NS_XROAD}}}getWsdlResponse")
        etree.SubElement(result, f"{{{NS_XROAD}}}serviceCode").text = code.strip()
        etree.SubElement(result, f"{{{NS_XROAD}}}serviceVersion").text = dataset.version
        soap = etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")
        boundary = "xroad" + uuid.uuid4().hex
        attachment_id = f"<wsdl-{uuid.uuid4().hex}@vissbridge>"
        parts = [
            f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-Transfer-Encoding: 8bit\r\n"
            f"Content-ID: <rootpart@vissbridge>\r\n\r\n".encode(), soap, b"\r\n",
            f"--{boundary}\r\nContent-Type: text/xml; charset=UTF-8\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: {attachment_id}\r\n\r\n".encode(), wsdl, b"\r\n",
            f"--{boundary}--\r\n".encode(),
        ]
        content_type = (f'multipart/related; type="text/xml"; start="<rootpart@vissbridge>"; '
                        f'boundary="{boundary}"')
        return SoapResponse(200, b"".join(parts), content_type=content_type)

    # -- WSDL --------------------------------------------------------------------

    def wsdl(self, names: list[str] | None = None, location: str | None = None,
             fields: dict[str, tuple[str, ...] | None] | None = None) -> bytes:
        """The WSDL of some (default: all) datasets, with X-Road headers bound.

        ``fields``: as a client sees it: only these datasets, each with only the fields its
        permission reads (None: all fields). A WSDL of several services is composed from each
        service's parts (:meth:`whole_wsdl` for all of them as anyone sees them).
        """
        if fields is not None:
            names = [n for n in (names if names is not None else self.catalog.datasets) if n in fields]
            fields = {n: (tuple(sorted(fields[n])) if fields[n] is not None else None) for n in names}
        chosen = tuple(sorted(names)) if names is not None else tuple(sorted(self.catalog.datasets))
        location = location or f"{self.base_url}/xroad"
        narrow = dict((n, f) for n, f in (fields or {}).items() if f is not None)
        if len(chosen) == 1:
            name = chosen[0]
            readable = narrow.get(name)
            return self._once(((name,), location, tuple(narrow.items())), self._wsdl_cache,
                              lambda: self._service_wsdl(self.catalog.datasets[name], readable, location, serving=True))
        if not narrow and location == f"{self.base_url}/xroad" and chosen == tuple(sorted(self.catalog.datasets)):
            return self.whole_wsdl()
        return self._composed(chosen, narrow, location)

    def _service_wsdl(self, dataset: Dataset, readable: tuple[str, ...] | None, location: str,
                      serving: bool) -> bytes:
        """One service's WSDL, from the app that answers it (``serving``) or, when that is not built, a
        Spyne app made for this rendering only (so a WSDL of every service does not keep 745 apps)."""
        with self._lock:
            app = self._apps.get((dataset.dataset, readable))
        if app is None and serving:
            app = self._app_for(dataset, readable)
        if app is None:
            body = render_wsdl([self._service_class([dataset], {dataset.dataset: readable}, fresh=True)],
                               XROAD_TNS, "viss_bridge_xroad", location)
        else:
            document = Wsdl11(app.app.interface)
            document.build_interface_document(location)
            body = document.get_interface_document()
            forget_rendered_classes()
        return add_xroad_headers(body, {code: dataset for code in services_of(dataset)}, location)

    def _service_parts(self, name: str, readable: tuple[str, ...] | None) -> ServiceParts:
        location = f"{self.base_url}/xroad"
        return self._once((name, readable), self._parts, lambda: service_parts(
            self._service_wsdl(self.catalog.datasets[name], readable, location, serving=False), XROAD_TNS))

    def _frame(self, location: str, some: str) -> Frame:
        return self._once((location,), self._frames, lambda: Frame.of(
            self._service_wsdl(self.catalog.datasets[some], None, location, serving=False), XROAD_TNS))

    def _composed(self, chosen: tuple[str, ...], narrow: dict[str, tuple[str, ...]], location: str,
                  stop: Callable[[], bool] | None = None) -> bytes | None:
        """The WSDL of several services (``narrow``: some with only these fields); None if ``stop()`` said so."""
        if not chosen:  # no service: Spyne's WSDL of an empty service, with the X-Road header schemas
            return add_xroad_headers(render_wsdl([self._service_class([])], XROAD_TNS, "viss_bridge_xroad", location),
                                     {}, location)
        parts = []
        for index, name in enumerate(chosen):
            if stop is not None and index % 25 == 0 and stop():
                return None
            parts.append(self._service_parts(name, narrow.get(name)))
        return self._frame(location, chosen[0]).compose(parts)

    def whole_wsdl(self, wait: float | None = None) -> bytes:
        """Every service's WSDL in one document, as an anonymous client sees it.

        ``wait`` None: build it here if it is not built yet (tools, tests). A server builds it in its
        catalog watcher (:meth:`build_whole`) and passes ``wait``: a request then waits at most that
        long for the build, which only happens once per process start (a reload composes the new
        version's from the parts of the old before it is published), and gets :class:`NotBuiltYet`.
        """
        if self._whole is not None:
            return self._whole
        if wait is None:
            self.build_whole()
        elif not self._whole_done.wait(wait):
            raise NotBuiltYet("the whole WSDL is still being built; per-service WSDLs are served now "
                              "(?wsdl&service=NAME)")
        assert self._whole is not None
        return self._whole

    def build_whole(self, stop: Callable[[], bool] | None = None) -> bool:
        """Compose the whole WSDL from every service's parts, building the parts that are missing.

        ``stop()`` is asked every few services: True leaves the work done so far in the caches (the
        next version adopts it) and returns False, so a reload never waits behind a start-up build."""
        if self._whole is not None:
            return True
        whole = self._composed(tuple(sorted(self.catalog.datasets)), {}, f"{self.base_url}/xroad", stop)
        if whole is None:
            return False
        with self._lock:
            self._whole = self._whole or whole
        self._whole_done.set()
        return True

    @property
    def whole_built(self) -> bool:
        return self._whole is not None


class XRoadEndpoint:
    """``/xroad``: the current catalog version's X-Road facade, and its WSDLs as each caller may see them."""

    name = "xroad"
    soap_ns = NS_SOAP11

    def __init__(self, get_caller: Callable[[dict[str, Any], dict[str, list[str]]], Caller | str],
                 whole_wait: float | None = None) -> None:
        self.get_caller = get_caller
        # None: a request builds the whole WSDL itself; seconds: someone else builds it (the server's watcher)
        self.whole_wait = whole_wait

    def handle(self, published: Any, request: SoapRequest, environ: dict[str, Any], info: CallInfo) -> SoapResponse:
        return published.xroad.handle(request, environ, info)

    def wsdl(self, published: Any, environ: dict[str, Any], query: dict[str, list[str]]) -> HttpAnswer:
        xroad: XRoadFacade = published.xroad
        names = query.get("service")
        if names:  # ?wsdl&service=<dataset>Search: the dataset's WSDL (it holds both operations)
            names = [n.removesuffix(SEARCH_SUFFIX) if n not in xroad.catalog else n for n in names]
        unknown = [n for n in names or [] if n not in xroad.catalog]
        if unknown:
            return HttpAnswer.text(404, f"unknown service {unknown[0]}\n")
        caller = self.get_caller(environ, query)
        if isinstance(caller, str):
            return HttpAnswer.text(403, caller)
        if caller.anonymous and names is None:
            try:  # built beside serving (server.BridgeApp._warm), never by this request
                return HttpAnswer.xml(xroad.whole_wsdl(wait=self.whole_wait))
            except NotBuiltYet as exc:
                return HttpAnswer(503, f"{exc}\n".encode(), headers=[("Retry-After", "5")])
        if caller.anonymous:
            return HttpAnswer.xml(xroad.wsdl(names))
        # An authenticated client's WSDL: the services it may call, with the fields it may read.
        chosen = [xroad.catalog.datasets[n] for n in (names or list(xroad.catalog.datasets))]
        fields = xroad.readable_fields(caller, chosen)
        if not fields:
            return HttpAnswer.text(404, f"client {caller.client_id} may call none of these services\n")
        return HttpAnswer.xml(xroad.wsdl(names, fields=fields))


def search_code(dataset: Dataset) -> str:
    """The serviceCode of a dataset's search service: ``csdd_vehicleSearch`` (a dataset name has no capitals)."""
    return dataset.dataset + SEARCH_SUFFIX


def services_of(dataset: Dataset) -> tuple[str, ...]:
    """The serviceCodes a dataset is offered under: its lookup, and its search when it has indexes."""
    return (dataset.dataset, search_code(dataset)) if dataset.indexes else (dataset.dataset,)


def client_list_xml(members: list[tuple[str, str]]) -> bytes:
    """``GET /listClients`` answer (PR-META section 2): members and subsystems with names."""
    root = etree.Element(f"{{{NS_XROAD}}}clientList", nsmap={"xrd": NS_XROAD, "id": NS_ID})
    for identifier, name in members:
        member = etree.SubElement(root, f"{{{NS_XROAD}}}member")
        member.append(XRoadId.parse_client(identifier).to_element(f"{{{NS_XROAD}}}id"))
        etree.SubElement(member, f"{{{NS_XROAD}}}name").text = name
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def client_list_json(members: list[tuple[str, str]]) -> dict[str, Any]:
    result = []
    for identifier, name in members:
        xid = XRoadId.parse_client(identifier)
        entry: dict[str, Any] = {"id": {"member_class": xid.member_class, "member_code": xid.member_code,
                                        "object_type": xid.object_type, "xroad_instance": xid.instance},
                                 "name": name}
        if xid.subsystem:
            entry["id"]["subsystem_code"] = xid.subsystem
        result.append(entry)
    return {"member": result}


def lookup_request(dataset: Dataset, client: str, key_values: dict[str, str], message_id: str,
                   user_id: str | None = None) -> bytes:
    """An X-Road request for one dataset lookup, exactly as a consumer would send it."""
    from viss_bridge.facade.xroad_headers import request_envelope

    parts = dataset.owner_parts
    service = XRoadId("SERVICE", parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else None,
                      dataset.dataset, dataset.version)
    body = etree.Element(f"{{{XROAD_TNS}}}{dataset.dataset}", nsmap={"ds": XROAD_TNS})
    for name in dataset.key:
        etree.SubElement(body, f"{{{XROAD_TNS}}}{name}").text = str(key_values[name])
    return request_envelope(client, service, body, message_id, user_id)
