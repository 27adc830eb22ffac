"""A demo legacy provider over HTTP: the register's Spyne service, its WSDL, and a control endpoint.

``POST /control`` (JSON) tells the provider how to misbehave, for tests and demos:

* ``{"mode": "normal"}``                 answer normally (the default)
* ``{"mode": "slow", "delay": 5}``       wait ``delay`` seconds, then answer (a hang, for a long delay)
* ``{"mode": "fault"}``                  answer with a SOAP ``soap:Server`` fault
* ``{"mode": "fail"}``                   answer HTTP 503 with an HTML page (a broken proxy)
* ``{"mode": "down"}``                   drop the connection without answering

``"after": N`` lets N more calls through normally first and ``"times": M`` limits
the misbehaviour to M calls (then back to normal), so a test can break a
provider in the middle of a sync. ``GET /control`` returns the mode and the
number of SOAP calls per operation (the benchmarks count provider calls with
it); ``POST /control/reset`` zeroes the counters; ``POST /control/update``
``{"key": ..., "set": {field: value}}`` changes a record (dataset field names)
and stamps it as changed now, so incremental sync has something to pull.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from socketserver import ThreadingMixIn
from typing import Any, Callable, Iterable
import sys
from wsgiref.handlers import SimpleHandler
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler, WSGIServer, make_server

from lxml import etree
from spyne import Application
from spyne.protocol.soap import Soap11
from spyne.server.wsgi import WsgiApplication

from viss_bridge.catalog.values import record_to_python, to_json
from viss_bridge.demo.legacy_providers.registers import EPOCH, REGISTERS, STATE_KEY, Register, wsdl_path
from viss_bridge.demo.world import REFERENCE_DATETIME, generate_world
from viss_bridge.xml import NS_SOAP11, XmlRejected, parse_untrusted

log = logging.getLogger(__name__)

MAX_PAGE = 1000
MODES = ("normal", "slow", "fault", "fail", "down", "tamper", "unsigned")


@dataclass
class Misbehaviour:
    mode: str = "normal"
    delay: float = 0.0
    after: int = 0
    times: int | None = None

    def take(self) -> str:
        """The mode for the next call (consumes ``after``/``times``)."""
        if self.mode == "normal":
            return "normal"
        if self.after > 0:
            self.after -= 1
            return "normal"
        if self.times is not None:
            if self.times <= 0:
                self.mode = "normal"
                return "normal"
            self.times -= 1
        return self.mode


@dataclass
class ProviderState:
    register: Register
    records: dict[str, dict[str, Any]]
    changed: dict[str, dt.datetime]
    lock: threading.Lock = field(default_factory=threading.Lock)
    behaviour: Misbehaviour = field(default_factory=Misbehaviour)
    calls: Counter[str] = field(default_factory=Counter)

    @classmethod
    def from_world(cls, register: Register, size: int, seed: int = 2026) -> "ProviderState":
        world = generate_world(size=size, seed=seed)
        records = {r[register.key]: r for r in world[register.dataset]}
        return cls(register, records, {key: REFERENCE_DATETIME for key in records})

    def lookup(self, key: str | None) -> Any:
        with self.lock:
            record = self.records.get((key or "").strip())
        return None if record is None else self.register.to_legacy(record)

    def changes(self, since: dt.datetime | None, after: str | None, page_size: int | None) -> tuple[list[Any], bool]:
        since = since or EPOCH
        if since.tzinfo is None:
            since = since.replace(tzinfo=dt.timezone.utc)
        size = max(1, min(page_size or 100, MAX_PAGE))
        with self.lock:
            order = sorted((at, key) for key, at in self.changed.items())
            if after:
                chosen = [(at, key) for at, key in order if (at, key) > (since, after)]
            else:
                chosen = [(at, key) for at, key in order if at > since]
            page = chosen[:size]
            result = [(at, self.register.to_legacy(self.records[key])) for at, key in page]
        return result, len(chosen) > size

    def update(self, key: str, values: dict[str, Any]) -> dt.datetime:
        with self.lock:
            if key not in self.records:
                raise KeyError(key)
            record = dict(self.records[key])
            record.update(values)
            self.records[key] = record_to_python(self._fields(), to_json(record))
            latest = max(self.changed.values())
            now = max(dt.datetime.now(dt.timezone.utc), latest + dt.timedelta(microseconds=1))
            self.changed[key] = now
            return now

    def _fields(self) -> tuple[Any, ...]:
        from viss_bridge.catalog.manifest import load_manifest
        from viss_bridge.demo.world import DEMO_CATALOG_DIR

        return load_manifest(DEMO_CATALOG_DIR / f"{self.register.dataset}.yaml").fields

    def snapshot(self) -> dict[str, dict[str, Any]]:
        """Every record as JSON values (tests compare the store with it)."""
        with self.lock:
            return {key: to_json(record) for key, record in self.records.items()}


def _soap_fault(code: str, message: str) -> bytes:
    envelope = etree.Element(f"{{{NS_SOAP11}}}Envelope", nsmap={"soap": NS_SOAP11})
    body = etree.SubElement(envelope, f"{{{NS_SOAP11}}}Body")
    fault = etree.SubElement(body, f"{{{NS_SOAP11}}}Fault")
    etree.SubElement(fault, "faultcode").text = code
    etree.SubElement(fault, "faultstring").text = message
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


class _Drop(Exception):
    """Raised to close the connection without an answer (mode "down")."""


class ProviderApp:
    """WSGI app of one register: SOAP at the register's path, WSDL at ``?wsdl``, ``/control``."""

    def __init__(self, state: ProviderState, public_url: Callable[[], str]) -> None:
        self.state = state
        self.register = state.register
        self.public_url = public_url
        self.spyne: Any = None
        if self.register.service is not None:
            app = Application([self.register.service()], tns=self.register.tns, name=self.register.name,
                              in_protocol=Soap11(validator=None), out_protocol=Soap11(cleanup_namespaces=True))
            self.spyne = WsgiApplication(app, chunked=True)
        self._wsdl_template = wsdl_path(self.register.name).read_bytes()
        self.key: Any = None  # SigningKey: sign answers (see ProviderServer.secure)
        self.trust: Any = None  # TrustStore: require signed requests

    def _files(self) -> Any:
        from viss_bridge.facade.contract_files import ContractFiles

        return ContractFiles(wsdl_path(self.register.name))

    def wsdl(self) -> bytes:
        """The hand-written WSDL with its soap:address (and imported schemas' locations) pointing here."""
        return self._files().wsdl(self.public_url() + self.register.path)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        method = environ.get("REQUEST_METHOD")
        if path.startswith("/control"):
            return self._control(environ, start_response, path)
        if path.rstrip("/") != self.register.path:
            return _respond(start_response, "404 Not Found", b"not here\n", "text/plain")
        if method == "GET":
            query = environ.get("QUERY_STRING", "")
            if query.lower().startswith("wsdl"):
                return _respond(start_response, "200 OK", self.wsdl(), "text/xml; charset=utf-8")
            if query.startswith("xsd="):  # the schemas the WSDL imports, as JAX-WS serves them
                from urllib.parse import unquote

                schema = self._files().xsd(unquote(query[4:]), self.public_url() + self.register.path)
                if schema is None:
                    return _respond(start_response, "404 Not Found", b"no such schema\n", "text/plain")
                return _respond(start_response, "200 OK", schema, "text/xml; charset=utf-8")
            return _respond(start_response, "405 Method Not Allowed", b"POST SOAP 1.1 or GET ?wsdl\n", "text/plain")
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        operation = _operation_of(raw)
        with self.state.lock:
            self.state.calls[operation] += 1
            mode = self.state.behaviour.take()
            delay = self.state.behaviour.delay
        if mode == "slow":
            time.sleep(delay)
        elif mode == "fault":
            return _respond(start_response, "500 Internal Server Error",
                            _soap_fault("soap:Server", f"{self.register.name} register is failing (demo fault)"),
                            "text/xml; charset=utf-8")
        elif mode == "fail":
            return _respond(start_response, "503 Service Unavailable",
                            b"<html><body><h1>503 Service Unavailable</h1></body></html>", "text/html")
        elif mode == "down":
            raise _Drop()
        if self.trust is not None:
            problem = self._verify_request(raw)
            if problem:
                return _respond(start_response, "500 Internal Server Error",
                                _soap_fault("wsse:InvalidSecurity", problem), "text/xml; charset=utf-8")
        env = dict(environ)
        env["wsgi.input"] = io.BytesIO(raw)
        env[STATE_KEY] = self.state
        captured: dict[str, Any] = {}

        def capture(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., None]:
            captured["status"] = status
            return lambda _data: None

        if self.register.answer is not None:
            status, body = self._native(raw)
            if self.key is None:
                return _respond(start_response, status, body, "text/xml; charset=utf-8")
            captured["status"] = status
        elif self.key is None:
            return self.spyne(env, start_response)
        else:
            body = b"".join(self.spyne(env, capture))
        if mode != "unsigned":
            body = self._sign(body, tamper=mode == "tamper")
        return _respond(start_response, captured.get("status", "200 OK"), body, "text/xml; charset=utf-8")

    def _native(self, raw: bytes) -> tuple[str, bytes]:
        """A register that answers its WSDL without Spyne (``Register.answer``)."""
        assert self.register.answer is not None
        try:
            root = parse_untrusted(raw)
        except XmlRejected as exc:
            return "500 Internal Server Error", _soap_fault("soap:Client", f"not XML: {exc}")
        body = root.find(f"{{{NS_SOAP11}}}Body")
        if body is None or not len(body):
            return "500 Internal Server Error", _soap_fault("soap:Client", "no SOAP 1.1 Body")
        return self.register.answer(self.state, body[0], wsdl_path(self.register.name))

    # -- WS-Security (a provider that requires signed requests and signs its answers) --

    def _verify_request(self, raw: bytes) -> str | None:
        from viss_bridge.security.wssecurity import verify_envelope

        try:
            verify_envelope(parse_untrusted(raw), self.trust, soap_ns=NS_SOAP11)
        except Exception as exc:
            return f"request signature not accepted: {getattr(exc, 'reason', None) or exc}"
        return None

    def _sign(self, body: bytes, tamper: bool) -> bytes:
        from viss_bridge.security.wssecurity import sign_envelope

        envelope = parse_untrusted(body)
        sign_envelope(envelope, self.key, soap_ns=NS_SOAP11)
        if tamper:  # change the answer after signing, as a man in the middle would
            for element in envelope.iter():
                if isinstance(element.tag, str) and etree.QName(element).localname in ("GivenName", "Street"):
                    element.text = "Tampered"
                    break
        return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")

    def _control(self, environ: dict[str, Any], start_response: Callable[..., Any], path: str) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            length = int(environ.get("CONTENT_LENGTH") or 0)
            data = json.loads(environ["wsgi.input"].read(length) or b"{}")
            with self.state.lock:
                if path.rstrip("/") == "/control/reset":
                    self.state.calls.clear()
                    self.state.behaviour = Misbehaviour()
                elif path.rstrip("/") == "/control":
                    mode = data.get("mode", "normal")
                    if mode not in MODES:
                        return _respond(start_response, "400 Bad Request", f"unknown mode {mode}\n".encode(), "text/plain")
                    self.state.behaviour = Misbehaviour(mode, float(data.get("delay", 0)), int(data.get("after", 0)),
                                                        data.get("times"))
            if path.rstrip("/") == "/control/update":
                try:
                    at = self.state.update(data["key"], data.get("set", {}))
                except KeyError:
                    return _respond(start_response, "404 Not Found", b"no such record\n", "text/plain")
                return _json(start_response, {"changed_at": at.isoformat()})
        with self.state.lock:
            report = {"register": self.register.name, "mode": self.state.behaviour.mode,
                      "calls": dict(self.state.calls), "total": sum(self.state.calls.values()),
                      "records": len(self.state.records)}
        return _json(start_response, report)


def _operation_of(raw: bytes) -> str:
    try:
        root = parse_untrusted(raw)
    except XmlRejected:
        return "?"
    body = root.find(f"{{{NS_SOAP11}}}Body")
    if body is None or not len(body):
        return "?"
    name = etree.QName(body[0]).localname
    return name.removesuffix("Request")


def _respond(start_response: Callable[..., Any], status: str, body: bytes, content_type: str) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _json(start_response: Callable[..., Any], data: dict[str, Any]) -> list[bytes]:
    return _respond(start_response, "200 OK", json.dumps(data).encode(), "application/json")


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True
    allow_reuse_address = True


class _ServerHandler(ServerHandler):
    def handle_error(self) -> None:
        if isinstance(sys.exc_info()[1], _Drop):
            raise _Drop()
        super().handle_error()

    def close(self) -> None:
        if self.status is None:  # dropped without an answer: nothing to log
            SimpleHandler.close(self)
            return
        super().close()

    def log_exception(self, exc_info: Any) -> None:
        log.error("demo provider error", exc_info=exc_info)


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        log.debug("provider: " + format, *args)

    def handle(self) -> None:
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536 or not self.parse_request():
            return
        handler = _ServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(), multithread=True)
        handler.request_handler = self  # type: ignore[attr-defined]
        try:
            handler.run(self.server.get_app())  # type: ignore[attr-defined]
        except _Drop:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class ProviderServer:
    """One register served on a loopback port from a background thread."""

    def __init__(self, register: str, host: str = "127.0.0.1", port: int = 0, size: int = 200,
                 seed: int = 2026) -> None:
        self.register = REGISTERS[register]
        self.state = ProviderState.from_world(self.register, size, seed)
        self.app = ProviderApp(self.state, lambda: self.base_url)
        self.httpd = make_server(host, port, self.app, server_class=_ThreadingServer,
                                 handler_class=_QuietHandler)
        self.host, self.port = self.httpd.server_address[:2]
        self.thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """The SOAP endpoint address."""
        return self.base_url + self.register.path

    @property
    def wsdl_url(self) -> str:
        return self.url + "?wsdl"

    def start(self) -> "ProviderServer":
        self.thread = threading.Thread(target=self.httpd.serve_forever, name=f"provider-{self.register.name}",
                                       daemon=True)
        self.thread.start()
        return self

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- control, in-process (tests) -----------------------------------------

    def set_mode(self, mode: str, delay: float = 0.0, after: int = 0, times: int | None = None) -> None:
        with self.state.lock:
            self.state.behaviour = Misbehaviour(mode, delay, after, times)

    def secure(self, key: Any, trust: Any) -> None:
        """Require WS-Security signed requests (trusted by ``trust``) and sign answers with ``key``."""
        self.app.key = key
        self.app.trust = trust

    def calls(self) -> dict[str, int]:
        with self.state.lock:
            return dict(self.state.calls)

    def reset(self) -> None:
        with self.state.lock:
            self.state.calls.clear()
            self.state.behaviour = Misbehaviour()


def start_provider(register: str, port: int = 0, size: int = 200, host: str = "127.0.0.1") -> ProviderServer:
    return ProviderServer(register, host, port, size).start()


def run_providers(registers: list[str], host: str, base_port: int, size: int,
                  on_ready: Callable[[list[ProviderServer]], None] | None = None) -> None:
    """Serve the given registers on consecutive ports until interrupted (``viss-bridge provider``)."""
    servers = [ProviderServer(name, host, base_port + i if base_port else 0, size) for i, name in enumerate(registers)]
    for server in servers[1:]:
        server.start()
    if on_ready:
        on_ready(servers)
    try:
        servers[0].serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for server in servers[1:]:
            server.stop()
