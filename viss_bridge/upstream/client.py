"""One shared zeep client per legacy provider, with the protections zeep lacks.

zeep has no operation timeout by default, signs with SHA-1 by default and
accepts signature-wrapped responses; this module fixes each of those and adds
what a production caller of fragile registers needs:

* the WSDL is loaded once per provider (hardened parser: no DTD, no entities,
  no external fetches) and the client is reused by every request;
* every HTTP call has a connect and an operation timeout;
* reads are retried a bounded number of times with exponential backoff, but
  only for failures where the request surely had no effect or the provider
  surely did not answer (refused connection, dropped connection, HTTP 502-504);
  a timeout is not retried (the operation timeout is the consumer's budget);
* (upstream/resilience.py, shared with the platform client) a circuit breaker
  per provider opens after N consecutive failures and
  answers ``ProviderUnavailable`` at once without calling; after
  ``reset_after`` seconds a single probe call is let through, and its outcome
  closes or reopens the breaker;
* at most ``max_concurrent`` calls per provider are in flight (per process);
* the exact bytes sent and received are captured by overriding
  ``Transport.post`` and handed to a sink (the message log) as
  :class:`ProviderCall` records, one per HTTP exchange, retries included.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import requests
import zeep
import zeep.exceptions
from lxml import etree
from zeep.helpers import serialize_object
from zeep.transports import Transport

from viss_bridge.catalog.legacy_source import LegacySoapSource
from viss_bridge.upstream import errors
from viss_bridge.upstream.errors import UpstreamError
from viss_bridge.upstream.resilience import CallGuard, failure as _error, transport_failure
from viss_bridge.upstream.resilience import CircuitBreaker as CircuitBreaker  # re-exported: its former home
from viss_bridge.xml import NS_SOAP11, XmlRejected, parse_untrusted

log = logging.getLogger(__name__)

#: Whatever the caller (the server) wants attached to provider exchanges made while it serves a request,
#: e.g. the consumer call's info, so the message log can relate both legs.
CALLER: contextvars.ContextVar[Any] = contextvars.ContextVar("viss_bridge_upstream_caller", default=None)

RETRYABLE_STATUS = {502, 503, 504}


@dataclass
class ProviderCall:
    """One HTTP exchange with a provider, exactly as on the wire."""

    provider: str
    operation: str
    address: str
    started_at: dt.datetime
    duration_ms: float
    request: bytes
    response: bytes
    status: int | None  # HTTP status; None when no answer came (timeout, refused, dropped)
    error: str | None
    attempt: int
    caller: Any = None
    dialect: str = "legacy_soap"  # how the provider leg is logged: legacy_soap, or rest for the platform


class ProviderCallSink(Protocol):
    def record(self, call: ProviderCall) -> None: ...


class CapturingTransport(Transport):
    """zeep transport with connect + operation timeouts that records every exchange's bytes."""

    def __init__(self, provider: str, connect_timeout: float, operation_timeout: float,
                 sign: Callable[[bytes], bytes] | None = None, verify: Callable[[bytes], bytes] | None = None) -> None:
        super().__init__(timeout=connect_timeout + operation_timeout,  # type: ignore[no-untyped-call]  # zeep
                         operation_timeout=operation_timeout)
        self.provider = provider
        self.connect_timeout = connect_timeout
        self.sign = sign
        self.verify = verify
        self._local = threading.local()

    def begin(self, operation: str, attempt: int) -> None:
        self._local.calls = []
        self._local.operation = operation
        self._local.attempt = attempt

    def take(self) -> list[ProviderCall]:
        calls = getattr(self._local, "calls", [])
        self._local.calls = []
        return calls

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> requests.Response:
        body = message.encode("utf-8") if isinstance(message, str) else message
        if self.sign is not None:
            body = self.sign(body)
        started_at = dt.datetime.now(dt.timezone.utc)
        started = time.perf_counter()
        record = ProviderCall(self.provider, getattr(self._local, "operation", "?"), address, started_at, 0.0, body,
                              b"", None, None, getattr(self._local, "attempt", 1), CALLER.get())
        try:
            response = self.session.post(address, data=body, headers=headers,
                                         timeout=(self.connect_timeout, self.operation_timeout))
            record.response = response.content
            record.status = response.status_code
        except requests.RequestException as exc:
            record.error = f"{exc.__class__.__name__}: {exc}"
            raise
        finally:
            record.duration_ms = round((time.perf_counter() - started) * 1000, 3)
            getattr(self._local, "calls", []).append(record)
        if self.verify is not None and response.status_code == 200:
            # Hand zeep only what our verifier approved (a re-serialised envelope of the verified Body).
            response._content = self.verify(response.content)
        return response


def _soap_fault_code(content: bytes) -> tuple[str, str] | None:
    """(faultcode, faultstring) if the bytes are a SOAP 1.1 fault envelope."""
    try:
        root = parse_untrusted(content)
    except XmlRejected:
        return None
    fault = root.find(f"{{{NS_SOAP11}}}Body/{{{NS_SOAP11}}}Fault")
    if root.tag != f"{{{NS_SOAP11}}}Envelope" or fault is None:
        return None
    return (fault.findtext("faultcode") or "").strip(), (fault.findtext("faultstring") or "").strip()


class ProviderClient:
    """Everything the bridge keeps per provider: zeep client, breaker, concurrency cap."""

    def __init__(self, source: LegacySoapSource, base_dir: Path, sink: ProviderCallSink | None = None) -> None:
        self.source = source
        self.name = source.provider
        self.sink = sink
        sign, verify = _security_hooks(source, base_dir)
        self.transport = CapturingTransport(self.name, source.timeouts.connect, source.timeouts.operation,
                                            sign=sign, verify=verify)
        self.guard = CallGuard(self.name, failures=source.breaker.failures, reset_after=source.breaker.reset_after,
                               max_concurrent=source.max_concurrent, attempts=source.retries.attempts,
                               backoff=source.retries.backoff, connect_timeout=source.timeouts.connect,
                               operation_timeout=source.timeouts.operation)
        self.breaker = self.guard.breaker
        wsdl = source.wsdl
        if not wsdl.startswith(("http://", "https://")):
            wsdl = str((base_dir / wsdl).resolve())
        settings = zeep.Settings(strict=True, xml_huge_tree=False, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
        try:
            self.client = zeep.Client(wsdl, transport=self.transport,  # type: ignore[no-untyped-call]  # zeep
                                      settings=settings)
        except requests.RequestException as exc:  # a WSDL URL (often the provider's own ?wsdl) that is unreachable
            raise UpstreamError(errors.PROVIDER_UNAVAILABLE, self.name,
                                f"the WSDL of provider {self.name} cannot be fetched from {wsdl}: {_short(exc)}",
                                called=False) from exc
        except (OSError, zeep.exceptions.Error, etree.XMLSyntaxError) as exc:
            raise UpstreamError(errors.PROVIDER_CONFIG, self.name,
                                f"the WSDL of provider {self.name} cannot be loaded from {wsdl}: {exc}", called=False) from exc
        if source.address:
            service = next(iter(self.client.wsdl.services.values()))
            port = next(iter(service.ports.values()))
            self.service = self.client.create_service(  # type: ignore[no-untyped-call]  # zeep
                port.binding.name, source.address)
            self.address = source.address
        else:
            self.service = self.client.service
            self.address = self.service._binding_options.get("address", "?")
        self.wsdl_loaded_at = time.time()

    # -- calls ---------------------------------------------------------------

    def call(self, operation: str, arguments: dict[str, Any], *, read: bool = True) -> Any:
        """Call an operation; return zeep's answer serialised to plain dicts, or raise UpstreamError."""
        try:
            method = getattr(self.service, operation)
        except AttributeError:
            raise UpstreamError(errors.PROVIDER_CONFIG, self.name,
                                f"provider {self.name} has no operation {operation}", called=False) from None
        return self.guard.run(operation, lambda attempt: self._attempt(operation, method, arguments, attempt),
                              read=read)

    def _attempt(self, operation: str, method: Any, arguments: dict[str, Any], attempt: int) -> Any:
        """One try: the answer, or the UpstreamError describing the failure (with .retryable)."""
        self.transport.begin(operation, attempt)
        failure: BaseException | None = None
        result: Any = None
        try:
            result = serialize_object(method(**arguments), target_cls=dict)  # type: ignore[no-untyped-call]  # zeep
        except (UpstreamError, requests.RequestException, zeep.exceptions.Error, etree.XMLSyntaxError, ValueError,
                TypeError) as exc:
            failure = exc
        finally:
            calls = self.transport.take()
        try:
            self._emit(calls)
        except UpstreamError as exc:
            return exc
        if failure is None:
            return result
        return self._classify(operation, failure, calls)

    def _classify(self, operation: str, exc: BaseException, calls: list[ProviderCall]) -> UpstreamError:
        name = self.name
        if isinstance(exc, UpstreamError):  # raised by our own verifier inside the transport
            return exc
        transport = transport_failure(exc, "provider", name, operation, self.source.timeouts.connect,
                                      self.source.timeouts.operation)
        if transport is not None:
            return transport
        if isinstance(exc, zeep.exceptions.Fault):
            # zeep calls any XML answer to a failed HTTP status a Fault; tell real SOAP faults from error pages.
            last = calls[-1] if calls else None
            fault = _soap_fault_code(last.response) if last is not None else None
            if fault is None and last is not None:
                status = last.status or 0
                return _error(errors.PROVIDER_UNAVAILABLE if status >= 500 else errors.INVALID_RESPONSE, name,
                              f"provider {name} answered HTTP {status} without a SOAP message",
                              retryable=status in RETRYABLE_STATUS)
            code = fault[0] if fault else str(exc.code or "")
            return UpstreamError(errors.PROVIDER_FAULT, name,
                                 f"provider {name} answered {operation} with fault {code}: {exc.message}",
                                 provider_fault_code=code)
        if isinstance(exc, zeep.exceptions.TransportError):
            return _error(errors.PROVIDER_UNAVAILABLE if exc.status_code >= 500 else errors.INVALID_RESPONSE, name,
                          f"provider {name} answered HTTP {exc.status_code} without a SOAP message",
                          retryable=exc.status_code in RETRYABLE_STATUS)
        return _error(errors.INVALID_RESPONSE, name,
                      f"provider {name} answered {operation} with a message that does not fit its WSDL: {_short(exc)}")

    def _emit(self, calls: list[ProviderCall]) -> None:
        if self.sink is None:
            return
        for call in calls:
            try:
                self.sink.record(call)
            except Exception as exc:
                raise UpstreamError(errors.LOGGING_FAILED, self.name,
                                    f"the exchange with provider {self.name} could not be logged: {exc}") from exc

    # -- introspection -------------------------------------------------------

    def output_elements(self, operation: str) -> list[str]:
        """Child element names of the operation's response wrapper (zeep unwraps a single child)."""
        binding = self.service._binding
        op = binding.get(operation)
        body = op.output.body
        return [name for name, _ in body.type.elements] if body is not None else []


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "..."


def _security_hooks(source: LegacySoapSource, base_dir: Path
                    ) -> tuple[Callable[[bytes], bytes] | None, Callable[[bytes], bytes] | None]:
    security = source.security
    if security.sign is None and not security.trusted and not security.require_signed_response:
        return None, None
    from viss_bridge.upstream.wssec import provider_security_hooks

    return provider_security_hooks(source, base_dir)
