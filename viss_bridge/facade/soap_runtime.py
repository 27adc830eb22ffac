"""What every SOAP endpoint shares: reading the request safely and running Spyne on it.

The bridge parses each request exactly once, with the hardened parser, before
Spyne sees it (Spyne's own parser accepts a DOCTYPE). Spyne then gets the
already-parsed tree through :class:`PreparsedSoap11`, does the typed
(de)serialisation it is good at, and hands back bytes that this module
collects so the caller can log them before they leave.
"""

from __future__ import annotations

import io
import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from lxml import etree
from spyne import Application, Fault
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.xml import NS_SOAP11, NS_SOAP12, NS_XSI, XmlRejected, parse_untrusted

log = logging.getLogger(__name__)

PREPARSED = "viss_bridge.document"
REQUEST_CONTEXT = "viss_bridge.request"


@dataclass
class SoapRequest:
    raw: bytes
    envelope: etree._Element
    header: etree._Element | None
    body_element: etree._Element


@dataclass
class SoapResponse:
    status: int
    body: bytes
    content_type: str = "text/xml; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    fault: BridgeFault | None = None


def read_body(environ: dict[str, Any], max_bytes: int) -> bytes:
    """Read the request body, refusing more than ``max_bytes`` without reading it all.

    The server bounds how long the body may take (``request_read_timeout``): a client that declares
    more than it sends, or sends too slowly, gets ``Client.RequestTimeout`` (HTTP 408), not a
    worker thread held until it gives up.
    """
    length_text = environ.get("CONTENT_LENGTH") or ""
    stream = environ["wsgi.input"]
    try:
        if length_text.strip():
            try:
                length = int(length_text)
            except ValueError:
                raise BridgeFault(faults.INVALID_SOAP, "Content-Length is not a number") from None
            if length < 0:
                raise BridgeFault(faults.INVALID_SOAP, "Content-Length is negative")
            if length > max_bytes:
                raise BridgeFault(faults.MESSAGE_TOO_LARGE,
                                  f"The message has {length} bytes, more than the limit of {max_bytes}", 413)
            data = stream.read(length) if length else b""
            if len(data) < length:
                raise BridgeFault(faults.INVALID_SOAP, f"The client closed the connection after {len(data)} of the "
                                  f"{length} bytes its Content-Length announced")
            return data
        data = stream.read(max_bytes + 1)
    except TimeoutError as exc:
        raise BridgeFault(faults.REQUEST_TIMEOUT, f"The request was not received in time: {exc}", 408) from None
    except OSError as exc:  # the client went away in the middle of its body
        raise BridgeFault(faults.INVALID_SOAP, f"The request body could not be read: {exc or 'connection closed'}") from None
    if len(data) > max_bytes:
        raise BridgeFault(faults.MESSAGE_TOO_LARGE, f"The message is larger than the limit of {max_bytes} bytes", 413)
    return data


def parse_soap(raw: bytes, soap_ns: str, max_bytes: int) -> SoapRequest:
    """Hardened parse plus the envelope checks every dialect needs."""
    try:
        root = parse_untrusted(raw, max_bytes)
    except XmlRejected as exc:
        code = faults.MESSAGE_TOO_LARGE if exc.reason == "size" else faults.INVALID_SOAP
        raise BridgeFault(code, f"Malformed SOAP message: {exc}", 413 if exc.reason == "size" else 500) from None
    other = NS_SOAP12 if soap_ns == NS_SOAP11 else NS_SOAP11
    if root.tag == f"{{{other}}}Envelope":
        version = "1.2" if other == NS_SOAP12 else "1.1"
        expected = "1.1" if soap_ns == NS_SOAP11 else "1.2"
        raise BridgeFault(faults.VERSION_MISMATCH,
                          f"A SOAP {version} envelope was sent to a SOAP {expected} endpoint", 500)
    if root.tag != f"{{{soap_ns}}}Envelope":
        raise BridgeFault(faults.INVALID_SOAP, f"Malformed SOAP message: the root element is {root.tag}, not a SOAP Envelope")
    header = root.find(f"{{{soap_ns}}}Header")
    body = root.find(f"{{{soap_ns}}}Body")
    if body is None:
        raise BridgeFault(faults.INVALID_SOAP, "Malformed SOAP message: no Body")
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise BridgeFault(faults.INVALID_SOAP,
                          f"Malformed SOAP message: the Body must hold exactly one element, it holds {len(children)}")
    operation = children[0]
    _drop_comments_and_pis(body)
    _drop_comments_and_pis(operation)
    if operation.get(f"{{{NS_XSI}}}nil") is not None:
        raise BridgeFault(faults.INVALID_REQUEST,
                          f"The operation element {etree.QName(operation).localname} must not carry xsi:nil")
    return SoapRequest(raw=raw, envelope=root, header=header, body_element=operation)


def _drop_comments_and_pis(parent: etree._Element) -> None:
    """Comments and processing instructions mean nothing to SOAP; Spyne and zeep
    take a parent's first child as its first element, so remove them."""
    for child in list(parent):
        if not isinstance(child.tag, str):
            if child.tail and child.tail.strip() == "":
                child.tail = None
            parent.remove(child)


INT64_MAX = 2**63 - 1


def bounded_int(value: int | None, name: str, minimum: int, maximum: int = INT64_MAX,
                default: int | None = None) -> int | None:
    """The one conversion of request integers for every face: ``None`` becomes
    ``default``; a value outside ``minimum..maximum`` (e.g. beyond SQLite's 64-bit
    integers) is ``Client.InvalidRequest`` naming the element."""
    if value is None:
        return default
    if not minimum <= value <= maximum:
        raise BridgeFault(faults.INVALID_REQUEST, f"{name} must be between {minimum} and {maximum}, not {value}")
    return value


class PreparsedSoap11(Soap11):
    """Soap11 that takes the tree the bridge already parsed instead of parsing again."""

    def create_in_document(self, ctx, charset=None):  # type: ignore[no-untyped-def]
        document = ctx.transport.req_env.get(PREPARSED)
        if document is None:  # only reachable if someone mounts the Spyne app directly
            raise Fault("Client.InvalidSoap", "request was not pre-parsed by the bridge")
        ctx.in_document = (document, {})


class _BridgeApplication(Application):
    """Spyne's Application, except that an unexpected error in a handler becomes the bridge's InternalError here.

    Spyne replaces such an error by a new ``Fault('Server', ...)`` that keeps neither the exception nor its
    traceback, and logs the traceback itself without the fault id. Turning it into the bridge's fault while the
    traceback is still at hand logs it once, under the UUID the consumer gets as faultDetail (docs/endpoints.md).
    """

    def call_wrapper(self, ctx):  # type: ignore[no-untyped-def]
        try:
            return super().call_wrapper(ctx)
        except Fault:
            raise
        except Exception as exc:
            raise SpyneFault(to_bridge_fault(exc)) from None


def make_spyne_wsgi(services: list[type], tns: str, name: str,
                    echo_header: bool = False) -> WsgiApplication:
    """A Spyne WSGI app over pre-parsed SOAP 1.1 whose faults are the bridge's own."""
    app = _BridgeApplication(services, tns=tns, name=name, in_protocol=PreparsedSoap11(validator=None),
                      out_protocol=Soap11(cleanup_namespaces=True))
    app.event_manager.add_listener("method_exception_document", _replace_fault_document)
    if echo_header:
        app.event_manager.add_listener("method_return_document", _echo_request_header)
    # chunked=True: Spyne 2.14's non-chunked path joins bytes with str and fails.
    return WsgiApplication(app, chunked=True, max_content_length=1 << 62)


def _schema_caches() -> list[dict[Any, Any]]:
    """Spyne's module-level class -> handler tables of the schema writer (``spyne.util.cdict``).

    A cdict remembers every class it was asked about, so every class that was ever put into a
    WSDL stayed alive for good: that is why "Spyne never frees its classes" (each catalog version
    kept its record types, ~12 MB a reload with all of VISS). Entries past the ones Spyne starts
    with are only a cache: a lookup that misses walks the class's bases again."""
    from spyne.interface.xml_schema import _base, model
    from spyne.util.cdict import cdict

    return [v for module in (_base, model) for v in vars(module).values() if isinstance(v, cdict)]


_SCHEMA_BASE_KEYS = [(table, set(table)) for table in _schema_caches()]


def forget_rendered_classes() -> None:
    """Drop what Spyne's schema writer remembered of the classes it rendered (call after a WSDL is built)."""
    for table, keep in _SCHEMA_BASE_KEYS:
        for key in [k for k in list(table) if k not in keep]:
            table.pop(key, None)


def render_wsdl(services: list[type], tns: str, name: str, location: str) -> bytes:
    """The WSDL of a Spyne app made only to render it, then dropped (also from Spyne's app registry,
    which would otherwise keep it and warn when the next one of that name replaces it)."""
    from spyne.interface.wsdl import Wsdl11
    from spyne.util.appreg import unregister_application

    app = _BridgeApplication(services, tns=tns, name=name, in_protocol=PreparsedSoap11(validator=None),
                             out_protocol=Soap11(cleanup_namespaces=True))
    app.transport = "http://schemas.xmlsoap.org/soap/http"  # what serving it over WSGI would say (the binding's)
    try:
        document = Wsdl11(app.interface)
        document.build_interface_document(location)
        return document.get_interface_document()  # type: ignore[no-any-return]
    finally:
        forget_rendered_classes()
        try:
            unregister_application(app)
        except KeyError:
            pass


class SpyneWsdl:
    """A Spyne app's WSDL, rendered once (on first request) for one address."""

    def __init__(self, wsgi: WsgiApplication, location: str,
                 finish: Callable[[bytes], bytes] | None = None) -> None:
        self._wsgi, self._location, self._finish = wsgi, location, finish
        self._document: bytes | None = None
        self._lock = threading.Lock()

    def __call__(self) -> bytes:
        with self._lock:
            if self._document is None:
                from spyne.interface.wsdl import Wsdl11

                document = Wsdl11(self._wsgi.app.interface)
                document.build_interface_document(self._location)
                body = document.get_interface_document()
                forget_rendered_classes()
                self._document = self._finish(body) if self._finish else body
            return self._document


def _echo_request_header(ctx) -> None:  # type: ignore[no-untyped-def]
    request = ctx.transport.req_env.get(REQUEST_CONTEXT)
    elements = getattr(request, "response_header", None)
    if not elements:
        return
    header = etree.Element(f"{{{NS_SOAP11}}}Header")
    for element in elements():
        header.append(element)
    ctx.out_document.insert(0, header)


def to_bridge_fault(error: BaseException) -> BridgeFault:
    if isinstance(error, BridgeFault):
        return error
    if isinstance(error, SpyneFault):
        return error.bridge_fault
    cause = getattr(error, "__cause__", None) or getattr(error, "__context__", None)
    if isinstance(cause, BridgeFault):
        return cause
    if isinstance(error, Fault):
        code = str(error.faultcode or "")
        if code.startswith("Client"):
            return BridgeFault(faults.INVALID_REQUEST, f"Invalid request: {error.faultstring}")
    fault = faults.service_failed("InternalError", "The bridge failed to process the request; see the log for the fault id")
    # The traceback's log line carries the fault's UUID, so the faultDetail a consumer quotes finds it.
    log.error("unexpected error while serving a request", exc_info=error, extra={"fault_id": fault.fault_id})
    return fault


class SpyneFault(Fault):
    """Carries a BridgeFault through Spyne so the envelope can be rewritten."""

    def __init__(self, fault: BridgeFault) -> None:
        super().__init__(faultcode="Server", faultstring=fault.message)
        self.bridge_fault = fault


def _replace_fault_document(ctx) -> None:  # type: ignore[no-untyped-def]
    error = ctx.out_error
    fault = error.bridge_fault if isinstance(error, SpyneFault) else to_bridge_fault(error)
    ctx.transport.req_env["viss_bridge.fault"] = fault
    ctx.out_document = etree.fromstring(faults.soap11_fault(fault))


def run_spyne(wsgi: WsgiApplication, environ: dict[str, Any], request: SoapRequest,
              context: Any = None) -> SoapResponse:
    """Call the Spyne app in-process on an already-read request and collect its answer."""
    env = dict(environ)
    env["wsgi.input"] = io.BytesIO(request.raw)
    env["CONTENT_LENGTH"] = str(len(request.raw))
    env["REQUEST_METHOD"] = "POST"
    env[PREPARSED] = request.envelope
    env[REQUEST_CONTEXT] = context
    captured: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., None]:
        captured["status"] = int(status.split()[0])
        captured["headers"] = headers
        return lambda _data: None

    chunks: Iterable[bytes] = wsgi(env, start_response)
    try:
        body = b"".join(chunk if isinstance(chunk, bytes) else str(chunk).encode() for chunk in chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close:
            close()
    fault = env.get("viss_bridge.fault")
    return SoapResponse(status=captured.get("status", 500), body=body, fault=fault)
