"""One pipeline for every SOAP endpoint: read, refuse without trusted time, parse, handle, sign, record, respond.

Each dialect (X-Road, catalog-native, VISS, legacy contracts, access) is an :class:`SoapEndpoint`:
it only turns a parsed request into an answer (``handle``) and serves its WSDL (``wsdl``). What
every answer must go through is written once, here, in the order a security officer relies on:

1. **read** the body, bounded in size and time (``read_body``);
2. **refuse** when trusted time is gone (the message log's TSA outage), before any work;
3. **parse** with the hardened parser (``parse_soap``) and the envelope checks of the SOAP version;
4. **handle**: the endpoint's dialect (its faults are :class:`BridgeFault`);
5. **sign** the answer with the node key where the node promises signed responses;
6. **record** the exchange in every sink (the message log) before it leaves: if that fails, the
   consumer gets ``LoggingFailed`` and no data;
7. **settle** the answer's use counts and tracker entries (only for an answer that was served);
8. **respond**, with metrics and one log line.

SOAP 1.1 and 1.2 differ only in the namespace, the fault rendering and the fault's HTTP status
(:func:`fault_response`), as in zeep's binding classes.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

from viss_bridge.catalog.catalog import Catalog
from viss_bridge.facade import faults
from viss_bridge.facade.exchange import CallInfo, Exchange, ExchangeSink, record_exchange, settle_uses
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.soap_runtime import SoapRequest, SoapResponse, parse_soap, read_body, to_bridge_fault
from viss_bridge.observability import FAULTS, LATENCY, REQUESTS
from viss_bridge.upstream.client import CALLER as CALLER_CONTEXT
from viss_bridge.xml import NS_SOAP11, NS_SOAP12

log = logging.getLogger("viss_bridge.server")

SOAP12_CONTENT_TYPE = "application/soap+xml; charset=utf-8"


class Published:
    """One catalog version and the per-version facades built from it; a request is served by one version.

    The catalog-native face (one record type holding every dataset) is built on its first use, or
    beside serving right after the version is published (``server.BridgeApp``), never as part of
    a reload that requests wait for.
    """

    def __init__(self, catalog: Catalog, xroad: Any, native: Callable[[], Any], loaded_at: float) -> None:
        self.catalog = catalog
        self.xroad = xroad
        self.loaded_at = loaded_at
        self._make_native = native
        self._native: Any = None
        self._lock = threading.Lock()

    @property
    def native(self) -> Any:
        if self._native is None:
            with self._lock:
                if self._native is None:
                    self._native = self._make_native()
        return self._native

    def native_if_built(self) -> Any:
        return self._native


@dataclass
class HttpAnswer:
    """A plain HTTP answer (a WSDL, or a refusal of a GET) before the WSGI layer sends it."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def text(cls, status: int, text: str) -> "HttpAnswer":
        return cls(status, text.encode())

    @classmethod
    def xml(cls, body: bytes) -> "HttpAnswer":
        return cls(200, body, "text/xml; charset=utf-8")


class SoapEndpoint(Protocol):
    """A SOAP dialect mounted at one path."""

    name: str  # the endpoint's name in the log, metrics and ``sign_responses`` (xroad, catalog, viss, ...)
    soap_ns: str  # NS_SOAP11 or NS_SOAP12

    def handle(self, published: Published, request: SoapRequest, environ: dict[str, Any],
               info: CallInfo) -> SoapResponse: ...

    def wsdl(self, published: Published, environ: dict[str, Any], query: dict[str, list[str]]) -> HttpAnswer: ...


def fault_response(fault: BridgeFault, soap_ns: str, header: list[Any] | None = None) -> SoapResponse:
    """The one fault rendering: a SOAP 1.1 or 1.2 envelope (with ``header`` elements) and its HTTP status."""
    if soap_ns == NS_SOAP12:
        return SoapResponse(faults.soap12_status(fault), faults.soap12_fault(fault, header),
                            content_type=SOAP12_CONTENT_TYPE, fault=fault)
    return SoapResponse(fault.http_status, faults.soap11_fault(fault, header), fault=fault)


def wants_wsdl(query: dict[str, list[str]]) -> bool:
    return "wsdl" in query or "WSDL" in query


class SoapPipeline:
    """The steps every SOAP request goes through, whichever endpoint answers it."""

    def __init__(self, *, max_message_bytes: int, refusal: Callable[[], str | None], sinks: list[ExchangeSink],
                 sign: Callable[[bytes], bytes] | None, signed_endpoints: set[str],
                 service_label: Callable[[SoapEndpoint, Published, CallInfo], str]) -> None:
        self.max_message_bytes = max_message_bytes
        self.refusal = refusal
        self.sinks = sinks  # shared with the server: sinks added later are seen
        self.sign_body = sign
        self.signed_endpoints = signed_endpoints
        self.service_label = service_label

    def serve(self, endpoint: SoapEndpoint, published: Published, environ: dict[str, Any]) -> SoapResponse:
        started = time.perf_counter()
        started_at = dt.datetime.now(dt.timezone.utc)
        info = CallInfo()
        raw = b""
        caller = CALLER_CONTEXT.set(info)  # provider-leg exchanges made while serving carry this call's info
        try:
            raw = read_body(environ, self.max_message_bytes)
            self._refuse_without_trusted_time()
            request = parse_soap(raw, endpoint.soap_ns, self.max_message_bytes)
            response = endpoint.handle(published, request, environ, info)
        except Exception as exc:  # a BridgeFault, or anything unexpected, becomes the dialect's fault
            response = fault_response(to_bridge_fault(exc), endpoint.soap_ns)
        finally:
            CALLER_CONTEXT.reset(caller)
        response = self._sign(endpoint, response)
        elapsed = time.perf_counter() - started
        exchange = Exchange(endpoint=endpoint.name, dialect=endpoint.name, started_at=started_at,
                            duration_ms=round(elapsed * 1000, 3), request=raw, response=response.body,
                            status=response.status, info=info,
                            fault_code=response.fault.code if response.fault else None,
                            fault_id=response.fault.fault_id if response.fault else None,
                            remote_addr=environ.get("REMOTE_ADDR"))
        response = self.record(exchange, response, endpoint.soap_ns)
        settle_uses(info, served=response.fault is None)  # counted and tracked only with the answer's log records
        self._observe(endpoint, published, info, response, started, elapsed)
        return response

    # -- the steps ------------------------------------------------------------------------------------

    def _refuse_without_trusted_time(self) -> None:
        if self.refusal():
            raise BridgeFault(faults.TIMESTAMPING_FAILED, "Trusted time is unavailable; the bridge accepts no "
                              "requests until time-stamping works again", http_status=503)

    def _sign(self, endpoint: SoapEndpoint, response: SoapResponse) -> SoapResponse:
        """The answer signed with the node key (WS-Security), so that the log holds what was sent."""
        if self.sign_body is None or not ("*" in self.signed_endpoints or endpoint.name in self.signed_endpoints):
            return response
        if response.content_type.startswith("multipart/"):  # SwA attachments (getWsdl) stay unsigned
            return response
        try:
            body = self.sign_body(response.body)
        except Exception as exc:  # never send an unsigned answer where a signed one is promised
            fault = BridgeFault(faults.service_failed("SigningFailed", "").code, "The response could not be signed")
            log.error("signing a response failed", exc_info=exc, extra={"fault_id": fault.fault_id})
            return fault_response(fault, endpoint.soap_ns)
        return SoapResponse(response.status, body, response.content_type, list(response.headers), response.fault)

    def record(self, exchange: Exchange, response: SoapResponse, soap_ns: str = NS_SOAP11) -> SoapResponse:
        """Hand the exchange to every sink; if one fails, answer LoggingFailed and no data."""
        fault = record_exchange(self.sinks, exchange)
        return response if fault is None else fault_response(fault, soap_ns)

    def _observe(self, endpoint: SoapEndpoint, published: Published, info: CallInfo, response: SoapResponse,
                 started: float, elapsed: float) -> None:
        service = self.service_label(endpoint, published, info)
        REQUESTS.labels(endpoint.name, service, "fault" if response.fault else "ok").inc()
        LATENCY.labels(endpoint.name, service).observe(time.perf_counter() - started)
        extra = {"endpoint": endpoint.name, "service": info.service or "-", "client": info.client,
                 "message_id": info.message_id, "status": response.status, "duration_ms": round(elapsed * 1000, 2)}
        if response.fault:
            FAULTS.labels(endpoint.name, response.fault.code).inc()
            extra.update(fault_code=response.fault.code, fault_id=response.fault.fault_id,
                         fault=response.fault.message)
            log.warning("request answered with a fault", extra=extra)
        else:
            log.info("request served", extra=extra)
