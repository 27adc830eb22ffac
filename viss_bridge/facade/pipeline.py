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
from viss_bridge.xml import NS_SOAP12

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


@dataclass
class Answer:
    """What a face answers, before it leaves: ``served`` says whether the uses it reserved become final."""

    status: int
    body: bytes
    content_type: str = "application/json"  # the REST face's; SOAP answers always name theirs
    headers: list[tuple[str, str]] = field(default_factory=list)
    fault: BridgeFault | None = None
    served: bool = True


class Face(Protocol):
    """One dialect as the exchange pipeline drives it (SOAP endpoints through SoapPipeline, REST)."""

    name: str

    def read(self, environ: dict[str, Any]) -> bytes: ...

    def answer(self, published: Any, raw: bytes, environ: dict[str, Any], info: CallInfo) -> Answer: ...

    def refused(self, fault: BridgeFault, info: CallInfo) -> Answer: ...

    def finish(self, answer: Answer, info: CallInfo) -> Answer: ...

    def wire(self, environ: dict[str, Any], raw: bytes, answer: Answer) -> tuple[bytes, bytes]: ...

    def label(self, published: Any, info: CallInfo) -> str: ...


class ExchangePipeline:
    """The steps every exchange goes through, on every face, in the order a security officer relies on."""

    def __init__(self, *, refusal: Callable[[], Any], sinks: list[ExchangeSink]) -> None:
        self.refusal = refusal
        self.sinks = sinks  # shared with the server: sinks added later are seen

    def serve(self, face: Face, published: Any, environ: dict[str, Any]) -> Answer:
        started = time.perf_counter()
        started_at = dt.datetime.now(dt.timezone.utc)
        info = CallInfo()
        raw = b""
        caller = CALLER_CONTEXT.set(info)  # provider-leg exchanges made while serving carry this call's info
        try:
            raw = face.read(environ)
            if self.refusal():  # no trusted time: nothing is answered
                raise BridgeFault(faults.TIMESTAMPING_FAILED, "Trusted time is unavailable; the bridge accepts no "
                                  "requests until time-stamping works again", http_status=503)
            answer = face.answer(published, raw, environ, info)
        except Exception as exc:  # a BridgeFault, or anything unexpected (logged with the fault's id)
            answer = face.refused(to_bridge_fault(exc), info)
        finally:
            CALLER_CONTEXT.reset(caller)
        answer = face.finish(answer, info)
        elapsed = time.perf_counter() - started
        request_bytes, response_bytes = face.wire(environ, raw, answer)
        refused = record_exchange(self.sinks, Exchange(
            endpoint=face.name, dialect=face.name, started_at=started_at, duration_ms=round(elapsed * 1000, 3),
            request=request_bytes, response=response_bytes, status=answer.status, info=info,
            fault_code=answer.fault.code if answer.fault else None,
            fault_id=answer.fault.fault_id if answer.fault else None, remote_addr=environ.get("REMOTE_ADDR"),
            settle=list(info.uses) if answer.served else []))
        if refused is not None:  # log before respond: the answer is replaced by LoggingFailed
            answer = face.refused(refused, info)
        settle_uses(info, served=answer.served and refused is None)  # counted only with the answer's records
        self._observe(face, published, info, answer, started, elapsed)
        return answer

    def _observe(self, face: Face, published: Any, info: CallInfo, answer: Answer, started: float,
                 elapsed: float) -> None:
        service = face.label(published, info)
        failed = answer.fault is not None and not answer.served
        REQUESTS.labels(face.name, service, "fault" if failed else "ok").inc()
        LATENCY.labels(face.name, service).observe(time.perf_counter() - started)
        extra = {"endpoint": face.name, "service": info.service or "-", "client": info.client,
                 "message_id": info.message_id, "status": answer.status, "duration_ms": round(elapsed * 1000, 2)}
        if answer.fault:
            FAULTS.labels(face.name, answer.fault.code).inc()
            extra.update(fault_code=answer.fault.code, fault_id=answer.fault.fault_id, fault=answer.fault.message)
            log.warning("request answered with a fault", extra=extra)
        else:
            log.info("request served", extra=extra)


class _SoapFace:
    """A SOAP endpoint as a pipeline face: SOAP envelopes in and out, the node's signature on answers."""

    def __init__(self, pipeline: "SoapPipeline", endpoint: SoapEndpoint) -> None:
        self.pipeline, self.endpoint, self.name = pipeline, endpoint, endpoint.name

    def read(self, environ: dict[str, Any]) -> bytes:
        return read_body(environ, self.pipeline.max_message_bytes)

    def answer(self, published: Any, raw: bytes, environ: dict[str, Any], info: CallInfo) -> Answer:
        request = parse_soap(raw, self.endpoint.soap_ns, self.pipeline.max_message_bytes)
        return _answer(self.endpoint.handle(published, request, environ, info))

    def refused(self, fault: BridgeFault, info: CallInfo) -> Answer:
        return _answer(fault_response(fault, self.endpoint.soap_ns))

    def finish(self, answer: Answer, info: CallInfo) -> Answer:
        return self.pipeline.sign(self.endpoint, answer)

    def wire(self, environ: dict[str, Any], raw: bytes, answer: Answer) -> tuple[bytes, bytes]:
        return raw, answer.body  # SOAP messages are logged exactly as on the wire

    def label(self, published: Any, info: CallInfo) -> str:
        return self.pipeline.service_label(self.endpoint, published, info)


def _answer(response: SoapResponse) -> Answer:
    return Answer(response.status, response.body, response.content_type, list(response.headers), response.fault,
                  served=response.fault is None)


class SoapPipeline:
    """Every SOAP endpoint through the one exchange pipeline: read, refuse, parse, handle, sign, record, settle."""

    def __init__(self, *, max_message_bytes: int, refusal: Callable[[], str | None], sinks: list[ExchangeSink],
                 sign: Callable[[bytes], bytes] | None, signed_endpoints: set[str],
                 service_label: Callable[[SoapEndpoint, Published, CallInfo], str]) -> None:
        self.max_message_bytes = max_message_bytes
        self.exchanges = ExchangePipeline(refusal=refusal, sinks=sinks)
        self.sign_body = sign
        self.signed_endpoints = signed_endpoints
        self.service_label = service_label

    def serve(self, endpoint: SoapEndpoint, published: Published, environ: dict[str, Any]) -> SoapResponse:
        answer = self.exchanges.serve(_SoapFace(self, endpoint), published, environ)
        return SoapResponse(answer.status, answer.body, answer.content_type, answer.headers, answer.fault)

    def sign(self, endpoint: SoapEndpoint, answer: Answer) -> Answer:
        """The answer signed with the node key (WS-Security), so that the log holds what was sent."""
        if self.sign_body is None or not ("*" in self.signed_endpoints or endpoint.name in self.signed_endpoints):
            return answer
        if answer.content_type.startswith("multipart/"):  # SwA attachments (getWsdl) stay unsigned
            return answer
        try:
            body = self.sign_body(answer.body)
        except Exception as exc:  # never send an unsigned answer where a signed one is promised
            fault = BridgeFault(faults.service_failed("SigningFailed", "").code, "The response could not be signed")
            log.error("signing a response failed", exc_info=exc, extra={"fault_id": fault.fault_id})
            return _answer(fault_response(fault, endpoint.soap_ns))
        return Answer(answer.status, body, answer.content_type, list(answer.headers), answer.fault, answer.served)
