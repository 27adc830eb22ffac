"""The WSGI application: mounts every endpoint, health and metrics.

One object per worker process. It owns the database engine and the current
catalog with the facades built from it; when a manifest file changes it
builds a new catalog and facades and swaps them in whole, so a request is
served entirely by one catalog version. A broken manifest never takes a
working catalog down: the old one keeps serving and ``/health`` says why the
new one was refused.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from typing import Any, Callable, Iterable
from urllib.parse import parse_qs

from viss_bridge.access.identity import IDENTITY_ENV, Authenticator, CertificateError
from viss_bridge.access.policy import RegistryPolicy
from viss_bridge.access.registry import AccessRegistry, AccessStoreUnavailable
from viss_bridge.access.requests import AccessRequests
from viss_bridge.access.tracker import DataTracker
from viss_bridge.catalog.catalog import Catalog, CatalogError, folder_fingerprint, load_catalog_keeping
from viss_bridge.catalog.store import DatasetStore, StoreUnavailable
from viss_bridge.xml import set_limits as set_xml_limits
from viss_bridge.config import Settings
from viss_bridge.db import make_engine, redacted
from viss_bridge.memtrim import return_freed_memory
from viss_bridge.facade.access_admin import AccessAdminFacade
from viss_bridge.facade.callers import plain_get_caller
from viss_bridge.facade.pipeline import Published, SoapEndpoint, SoapPipeline, wants_wsdl
from viss_bridge.facade.catalog_native import CATALOG_TNS, CatalogEndpoint, CatalogFacade
from viss_bridge.facade.datatracker import DataTrackerService
from viss_bridge.facade.dcat_face import dcat_answer
from viss_bridge.facade.exchange import CallInfo, ExchangeSink, settle_logged
from viss_bridge.facade.logging_sink import MessageLogAuditSink, MessageLogSink, sign_response
from viss_bridge.msglog import LogUnavailable, MessageLog
from viss_bridge.facade.legacy_contract import LegacyContractFacade, LegacyContracts
from viss_bridge.facade.sources import ProviderLegSink, SourceRouter
from viss_bridge.facade.replay import ReplayTable
from viss_bridge.facade.guarded_read import GuardedRead
from viss_bridge.facade.rest import RestFace
from viss_bridge.facade.xroad_rest import XRoadRestFace
from viss_bridge.facade.xroad import XRoadEndpoint, XRoadFacade, client_list_json, client_list_xml
from viss_bridge.facade.xroad import METASERVICES as XROAD_METASERVICES
from viss_bridge.facade.access_admin import OPERATIONS as ACCESS_OPERATIONS
from viss_bridge.facade.catalog_native import OPERATIONS as CATALOG_OPERATIONS
from viss_bridge.facade.datatracker import OPERATIONS as TRACKER_OPERATIONS
from viss_bridge.facade.viss import OPERATIONS as VISS_OPERATIONS
from viss_bridge.upstream.platform import PlatformConnection, PlatformPool
from viss_bridge.upstream.pool import ProviderPool
from viss_bridge.observability import (CATALOG_DATASETS, CATALOG_RELOADS, bounded_label,
                                       metrics_text)
from viss_bridge.xml import NS_SOAP12
from pathlib import Path

log = logging.getLogger("viss_bridge.server")

# Operation names the endpoints define in code; with the published dataset names and the legacy contracts'
# operations they are the only service labels /metrics shows (observability.bounded_label).
STATIC_OPERATIONS = frozenset((*XROAD_METASERVICES, *TRACKER_OPERATIONS, *CATALOG_OPERATIONS, *ACCESS_OPERATIONS,
                               *VISS_OPERATIONS))

StartResponse = Callable[..., Any]

# How long a request for a WSDL of every dataset waits for the watcher's start-up build before a 503
# (only right after a worker starts; after that, every version is swapped in with them built).
WHOLE_WSDL_WAIT = 60.0
# A catalog change is read once the folder has been quiet this long (seconds).
RELOAD_SETTLE = 0.05


class BridgeApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        set_xml_limits(settings.max_xml_attributes, settings.max_xml_elements)
        self.engine = make_engine(settings.database_url)
        self.store = DatasetStore(self.engine)
        self.registry = AccessRegistry(self.engine)
        self.store.create_schema()
        self.registry.create_schema()
        self.tracker = DataTracker(self.engine, self.registry.audit)
        self.policy = RegistryPolicy(self.registry, tracker=self.tracker)
        # Who is calling: TLS client certificate, trusted proxy, WS-Security; the header only in development.
        self.authenticator = Authenticator(self.registry.client_for_fingerprint,
                                           trust_client_header=settings.trust_client_header,
                                           proxy_cert_header=settings.proxy_cert_header,
                                           trusted_proxies=settings.trusted_proxies,
                                           wss_trust_ca=settings.wss_trust_ca, wss_max_age=settings.wss_max_age,
                                           wss_clock_skew=settings.wss_clock_skew, cache_seconds=1.0)
        # Ids of accepted signed messages (/viss MessageID, /xroad id), shared by workers and nodes.
        self.replay = ReplayTable(self.engine)
        self.replay.create_schema()
        self.access_requests = AccessRequests(self.registry, lambda name: self.current().catalog.get(name))
        self.access_admin = AccessAdminFacade(self.access_requests, self.authenticator, settings.base_url,
                                              on_change=self.policy.forget,
                                              operator_clients=settings.operator_clients)
        # Receivers of every exchange before its response leaves (the message log plugs in here).
        self.sinks: list[ExchangeSink] = []
        # The message log: every exchange is committed to the node's chain before its response leaves.
        self.msglog = MessageLog.from_settings(settings)
        try:
            self.msglog.open()
        except LogUnavailable as exc:  # serve nothing unlogged: every call gets LoggingFailed until it is back
            log.error("message log unavailable at start", extra={"error": str(exc)})
        self.sinks.append(MessageLogSink(self.msglog))
        self.msglog.on_commit = settle_logged  # an answer's tracker entries, once its records committed
        # Access-control steps go on the same signed chain once they commit.
        self.registry.audit.committed_sinks.append(MessageLogAuditSink(self.msglog))
        self.msglog.start_sealer()
        signed = {e.strip() for e in settings.sign_responses.split(",") if e.strip()}
        self.signed_endpoints = signed
        self.response_key = self.msglog.signing_key if signed else None
        if signed and self.response_key is None:
            raise RuntimeError("sign_responses is set but no signing_cert/signing_key is configured")
        # Legacy providers: one zeep client per provider; provider-leg exchanges go to the same sinks.
        self.upstream = ProviderPool(sink=ProviderLegSink(self.sinks))
        # The platform (source.kind: platform): one HTTP session per platform, this node's connection settings.
        self.platform = PlatformPool(PlatformConnection.from_settings(settings), sink=ProviderLegSink(self.sinks))
        self.sources = SourceRouter(self.store, self.upstream, self.platform)
        self.legacy = LegacyContractFacade(LegacyContracts(settings.legacy_folder), self.sources, self.policy,
                                           self.authenticator, settings.base_url)
        self.viss = make_viss_facade(settings, self.engine, self.sources, self.policy, self.registry, self.replay)
        # The DAGR-style REST face: the same guarded read, log and settling as the SOAP faces.
        self.rest = RestFace(lambda: self.current().catalog, GuardedRead(self.sources, self.policy), self.registry,
                             self.authenticator, self.sinks, settings.base_url,
                             trust_client_header=settings.trust_client_header, refusal=self.msglog.refusal)
        self.xroad_rest = XRoadRestFace(self.rest, self.current)  # /r1: X-Road REST (PR-REST 1.0), same reader
        self.catalog_folder = Path(settings.catalog_dir)
        self._lock = threading.Lock()
        self._fingerprint = ""
        self.reload_error: str | None = None
        catalog, errors = load_catalog_keeping(None, self.catalog_folder)
        self._note_errors(errors)
        self.published = self._publish(catalog)
        CATALOG_DATASETS.set(len(self.published.catalog))
        # Every SOAP face goes through the one pipeline (facade/pipeline.py); each endpoint only handles its dialect.
        self.pipeline = SoapPipeline(max_message_bytes=settings.max_message_bytes, refusal=self.msglog.refusal,
                                     sinks=self.sinks, sign=self._sign_body if self.response_key else None,
                                     signed_endpoints=self.signed_endpoints, service_label=self._service_label)
        get_caller = self._get_caller
        self.endpoints: dict[str, SoapEndpoint] = {
            "/xroad": XRoadEndpoint(get_caller, whole_wait=WHOLE_WSDL_WAIT),
            "/catalog": CatalogEndpoint(wsdl_wait=WHOLE_WSDL_WAIT), "/viss": self.viss,
            "/access": self.access_admin, "/legacy": self.legacy}
        self.routes: dict[str, Callable[[dict[str, Any], StartResponse], Iterable[bytes]]] = {
            "/listClients": self._list_clients,
            "/access/permissions": self._current_permissions,
            "/tracker": self._tracker_wsdl,
            "/dcat": self._dcat,
            "/health": self._health,
            "/metrics": self._metrics,
            "/": self._index,
        }
        for path, endpoint in self.endpoints.items():
            self.routes[path] = self._soap_route(endpoint)
        # The web console (viss_bridge/console): its own login, roles and pages below /console/.
        from viss_bridge.console.web import Console

        self.console = Console(self)
        self.routes["/console"] = self.console
        self._stopping = threading.Event()
        self._gc_frozen = False
        self._watcher = threading.Thread(target=self._watch, name="catalog-watch", daemon=True)
        self._watcher.start()

    # -- catalog versions ------------------------------------------------------

    def _publish(self, catalog: Catalog, previous: Published | None = None) -> Published:
        """The facades of a catalog version, reusing what ``previous`` built for unchanged manifests."""
        self._fingerprint = catalog.fingerprint
        base = self.settings.base_url
        tracker = DataTrackerService(self.registry, self.tracker, self.settings.provider,
                                     lambda name: catalog.get(name) if catalog.get(name) and catalog.get(name).subject
                                     else None, base)
        try:  # a dataset whose indexes changed gets its search entries rebuilt (one query when none did)
            rebuilt = self.store.ensure_indexes(catalog)
            if rebuilt:
                log.info("search indexes rebuilt", extra={"datasets": rebuilt})
        except Exception as exc:  # noqa: BLE001 - searches of those datasets stay on the old entries meanwhile
            log.warning("could not rebuild search indexes", extra={"error": str(exc)})
        try:  # restrictions made under a name before its manifest declared a register now cover the register
            self.tracker.adopt_registers(catalog)
        except Exception as exc:  # noqa: BLE001 - the next publish tries again; serving must not wait on it
            log.warning("could not move restrictions to their datasets' registers", extra={"error": str(exc)})
        native_before = previous.native_if_built() if previous is not None else None
        return Published(catalog=catalog,
                         xroad=XRoadFacade(catalog, self.sources, self.policy, self.settings.xroad_instance, base,
                                           authenticator=self.authenticator, tracker_service=tracker,
                                           replay=self.replay, previous=previous.xroad if previous else None,
                                           fast_lookups=self.settings.xroad_fast_lookups),
                         native=lambda: CatalogFacade(catalog, self.sources, self.policy, base,
                                                      authenticator=self.authenticator, previous=native_before),
                         loaded_at=time.time())

    def current(self) -> Published:
        """The catalog version to serve this request with. Never waits: reloads happen beside serving."""
        return self.published

    def _watch(self) -> None:
        """Per worker: build what the first requests would (off their path), then follow the catalog folder.

        Everything is built here, beside serving: a new version is built whole (its WSDLs included,
        from the parts of the version before) and then swapped in with one assignment, so no request
        waits for a reload. The start-up build of the whole WSDLs gives way to a reload (it carries on
        with the new version afterwards)."""
        interval = max(self.settings.reload_interval, 0.05)
        warm = False
        while not self._stopping.is_set():
            try:
                if not warm:
                    warm = self._warm(self.published)
                    if warm:
                        self._collect_garbage()
                if self._folder_changed():
                    self._settle()
                    with self._lock:
                        if self._maybe_reload():
                            warm = False
                            if self._gc_frozen:
                                self._collect_garbage()
            except Exception:  # noqa: BLE001 - the watcher must outlive any one bad reload
                log.exception("catalog reload failed; serving the previous version")
                warm = True  # do not spin on a build that fails; the next change tries again
            if warm and self._stopping.wait(interval):
                return

    def _collect_garbage(self) -> None:
        """Free the version just replaced now, and keep later collections short.

        Spyne's classes hold reference cycles, so a replaced version is freed only by a full
        collection, which Python runs rarely: without this, every reload's garbage stayed (RSS grew
        by a few MB per reload with all of VISS). A full collection over everything a worker holds
        takes a noticeable fraction of a second under the GIL, so the first one (once the start-up
        build is done) is followed by ``gc.freeze()``: what exists then is never scanned again, and
        each later collection only looks at what was made since (the versions built since), in
        milliseconds. (Cyclic garbage among the frozen objects, e.g. the first version's classes of
        a manifest edited later, is not freed: once per manifest, never per reload.)"""
        gc.collect()
        if not self._gc_frozen:
            gc.freeze()
            self._gc_frozen = True
        return_freed_memory()  # else glibc keeps the replaced version's pages: RSS crept ~0.7 MB per reload

    def _folder_changed(self) -> bool:
        return folder_fingerprint([self.catalog_folder]) != self._fingerprint

    def _settle(self, quiet: float = RELOAD_SETTLE, longest: float = 1.0) -> None:
        """Wait until the folder stops changing (at most ``longest``): a burst of edits, or an editor
        writing a file in steps, makes one version, not one per step."""
        deadline = time.monotonic() + longest
        seen = folder_fingerprint([self.catalog_folder])
        while time.monotonic() < deadline and not self._stopping.wait(quiet):
            now = folder_fingerprint([self.catalog_folder])
            if now == seen:
                return
            seen = now

    def _warm(self, published: Published, stop: Callable[[], bool] | None = None) -> bool:
        """Build the WSDLs of every dataset at once (catalog-native, whole X-Road) before a request asks.

        Only missing parts are rendered (one Spyne app per batch of datasets, then dropped); the rest is
        text composition. ``stop`` (default: the folder changed) ends it early, keeping what is done for
        the next version; True when both are built."""
        stop = stop or self._folder_changed
        try:
            return bool(published.native.build_wsdl(stop) and published.xroad.build_whole(stop))
        except Exception:  # noqa: BLE001 - a request would report the problem; serving goes on
            log.exception("building the catalog's WSDLs ahead of requests failed")
            return True

    def _maybe_reload(self) -> bool:
        """Load the folder if it changed, build the new version beside serving, swap it in with one
        assignment; True if swapped."""
        fingerprint = folder_fingerprint([self.catalog_folder])
        if fingerprint == self._fingerprint:
            return False
        try:
            catalog, errors = load_catalog_keeping(self.published.catalog, self.catalog_folder)
        except CatalogError as exc:  # the folder itself is gone: keep serving what we have
            self._fingerprint = fingerprint
            self._note_errors(exc.errors)
            return False
        self._note_errors(errors)
        swapped = False
        if catalog.version_hash != self.published.catalog.version_hash:
            previous = self.published
            published = self._publish(catalog, previous)
            # What the old version had ready, the new one has ready when it is swapped in (only the
            # changed manifests' parts are rendered; a request never finds it half built).
            if previous.native_if_built() is not None and previous.native.wsdl_built \
                    and previous.xroad.whole_built:
                self._warm(published, stop=lambda: False)
            self.published = published
            swapped = True
            CATALOG_DATASETS.set(len(catalog))
            log.info("catalog reloaded", extra={"datasets": len(catalog), "version": catalog.version_hash})
        self._fingerprint = fingerprint
        CATALOG_RELOADS.labels("refused" if errors else "ok").inc()
        return swapped

    def _note_errors(self, errors: list[Any]) -> None:
        """Remember manifest problems for /health; broken manifests are skipped, not fatal."""
        self.reload_error = "\n".join(str(e) for e in errors) or None
        if errors:
            log.error("manifests refused; serving the rest (and the last good version of a broken one)",
                      extra={"errors": self.reload_error})

    def reload(self) -> None:
        """Reload now (tests, SIGHUP)."""
        with self._lock:
            self._fingerprint = ""
            self._maybe_reload()

    def close(self) -> None:
        self._stopping.set()

    # -- WSGI --------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        method = (environ.get("REQUEST_METHOD") or "GET").upper()
        if method == "HEAD":  # exactly GET's status and headers, without the body
            environ["REQUEST_METHOD"] = "GET"
            body = self._dispatch(environ, start_response)
            close = getattr(body, "close", None)
            if close is not None:
                close()
            return []
        if method not in SERVED_METHODS:
            body_text = f"method {method} is not served; use POST for SOAP, GET for ?wsdl and pages\n".encode()
            start_response(_status(405), [("Allow", ALLOW), ("Content-Type", "text/plain; charset=utf-8"),
                                          ("Content-Length", str(len(body_text)))])
            return [body_text]
        return self._dispatch(environ, start_response)

    def _dispatch(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        handler = self.routes.get(path.rstrip("/") or "/")
        if handler is None and path.startswith("/legacy/"):
            handler = self.routes["/legacy"]
        if handler is None and (path == "/rest" or path.startswith("/rest/")):
            handler = self.rest
        if handler is None and (path == "/r1" or path.startswith("/r1/")):
            handler = self.xroad_rest
        if handler is None and path.startswith("/console/"):
            handler = self.console
        if handler is None:
            return _plain(start_response, 404, f"no endpoint at {path}; see / for the list\n")
        try:
            environ[IDENTITY_ENV] = self.authenticator.identify(environ)
        except CertificateError as exc:
            log.warning("unreadable client certificate", extra={"error": str(exc), "path": path})
            return _plain(start_response, 400, f"the client certificate cannot be read: {exc}\n")
        except AccessStoreUnavailable as exc:
            return _plain(start_response, 503, f"connection registry unavailable: {exc}\n")
        try:
            return handler(environ, start_response)
        except Exception:  # the last line of defence: a worker must never die on a request
            log.exception("unhandled error", extra={"path": path})
            return _plain(start_response, 500, "internal error; see the log\n")

    def _soap_route(self, endpoint: SoapEndpoint) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
        """GET ``?wsdl`` from the endpoint; POST through the pipeline."""
        def route(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
            published = self.current()
            if environ.get("REQUEST_METHOD") == "GET":
                query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
                if not wants_wsdl(query) and not (endpoint.name == "legacy" and "xsd" in query):  # ?xsd=: its schemas
                    version = "1.2" if endpoint.soap_ns == NS_SOAP12 else "1.1"
                    return _plain(start_response, 405, f"POST a SOAP {version} message, or GET ?wsdl\n")
                answer = endpoint.wsdl(published, environ, query)
                return _send(start_response, answer.status, answer.body, answer.content_type, answer.headers)
            response = self.pipeline.serve(endpoint, published, environ)
            return _send(start_response, response.status, response.body, response.content_type, response.headers)

        return route

    def _service_label(self, endpoint: SoapEndpoint, published: Published, info: CallInfo) -> str:
        """The call's service as a metrics label: a configured name, else the one shared ``unknown``."""
        if endpoint.name == "legacy":  # info.service is legacy/<contract>/<operation> once the operation is mapped
            parts = (info.service or "").split("/")
            try:
                contract = self.legacy.contracts.get(parts[1]) if len(parts) == 3 else None
            except Exception:  # a broken contract has no configured names
                contract = None
            return bounded_label(info.operation, contract.operations if contract is not None else ())
        if info.operation in STATIC_OPERATIONS:
            return bounded_label(info.operation, STATIC_OPERATIONS)
        return bounded_label(info.operation, published.catalog.datasets)

    def _sign_body(self, body: bytes) -> bytes:
        assert self.response_key is not None
        return sign_response(body, self.response_key)

    def _get_caller(self, environ: dict[str, Any], query: dict[str, list[str]]) -> Any:
        return plain_get_caller(environ, query, self.authenticator, self.settings.trust_client_header)

    def _tracker_wsdl(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
        if environ.get("REQUEST_METHOD") == "GET" and ("wsdl" in query or "WSDL" in query):
            return _xml(start_response, self.current().xroad.tracker_service.wsdl())
        return _plain(start_response, 405, "GET ?wsdl; the data tracker services are called at /xroad\n")

    def _current_permissions(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """``GET /access/permissions``: the calling client's permissions (like the platform's current_user_permissions)."""
        if environ.get("REQUEST_METHOD") != "GET":
            return _plain(start_response, 405, "GET only\n")
        query = parse_qs(environ.get("QUERY_STRING", ""))
        caller = self._get_caller(environ, query)
        if isinstance(caller, str):
            return _plain(start_response, 403, caller)
        if caller is None or caller.anonymous:
            return _plain(start_response, 401, "authenticate with a registered client certificate\n")
        try:
            held = self.registry.permissions(client_id=caller.client_id)
        except AccessStoreUnavailable as exc:
            return _plain(start_response, 503, f"permission store unavailable: {exc}\n")
        body = json.dumps({"client": caller.client_id, "authenticated_by": caller.authenticated_by,
                           "permissions": [p.to_json() for p in held]}, ensure_ascii=False, indent=2).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _dcat(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """``GET /dcat``: the DCAT-AP 3.0 catalogue (Turtle; JSON-LD on Accept), see facade/dcat_face.py."""
        if environ.get("REQUEST_METHOD") != "GET":
            return _plain(start_response, 405, "GET only\n")
        code, content_type, body = dcat_answer(self.settings, self.current().catalog, self.legacy.contracts,
                                               environ.get("HTTP_ACCEPT"))
        start_response(_status(code), [("Content-Type", content_type), ("Vary", "Accept"),
                                       ("Content-Length", str(len(body)))])
        return [body]

    def _list_clients(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        query = parse_qs(environ.get("QUERY_STRING", ""))
        instance = query.get("xRoadInstance", [self.settings.xroad_instance])[0]
        members: dict[str, str] = {}
        for dataset in self.current().catalog:
            members.setdefault(dataset.owner, dataset.owner_name or dataset.owner)
        try:
            for client in self.registry.clients():
                members.setdefault(client.client_id, client.name or client.client_id)
        except AccessStoreUnavailable as exc:
            return _plain(start_response, 503, f"client registry unavailable: {exc}\n")
        listed = sorted((cid, name) for cid, name in members.items() if cid.split("/")[0] == instance)
        if "application/json" in environ.get("HTTP_ACCEPT", ""):
            body = json.dumps(client_list_json(listed), ensure_ascii=False).encode()
            start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
            return [body]
        return _xml(start_response, client_list_xml(listed))

    def health(self) -> tuple[bool, dict[str, Any]]:
        report: dict[str, Any] = {"node": self.settings.node_id}
        ok = True
        try:
            self.store.ping()
            report["store"] = {"status": "ok", "url": redacted(self.settings.database_url)}
        except StoreUnavailable as exc:
            ok = False
            report["store"] = {"status": "unavailable", "error": str(exc), "url": redacted(self.settings.database_url)}
        log_ok, report["msglog"] = self.msglog.health()
        ok = ok and log_ok
        published = self.published
        report["catalog"] = {"status": "ok" if not self.reload_error else "manifests-refused",
                             "datasets": len(published.catalog), "version": published.catalog.version_hash,
                             "folder": str(self.catalog_folder)}
        if self.reload_error:
            report["catalog"]["error"] = self.reload_error
        breakers = {**self.upstream.breaker_states(), **self.platform.breaker_states()}
        if breakers:  # legacy providers used by this worker; an open breaker does not make the node unhealthy
            report["providers"] = {name: {"breaker": state} for name, state in sorted(breakers.items())}
        # How callers are authenticated; "development" means the client header is believed without proof.
        report["authentication"] = {
            "mode": "development (trust_client_header)" if self.settings.trust_client_header else "certificates",
            "tls_client_certificates": bool(self.settings.tls_certfile and self.settings.tls_client_ca),
            "proxy_certificate_header": self.settings.proxy_cert_header or None,
            "ws_security": bool(self.settings.wss_trust_ca)}
        report["status"] = "ok" if ok else "unavailable"
        return ok, report

    def _health(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        self.current()
        ok, report = self.health()
        body = json.dumps(report, ensure_ascii=False, indent=2).encode()
        start_response("200 OK" if ok else "503 Service Unavailable",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    def _metrics(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        body = metrics_text()
        start_response("200 OK", [("Content-Type", "text/plain; version=0.0.4; charset=utf-8"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    def _index(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        base = self.settings.base_url
        published = self.current()
        body = json.dumps({
            "service": "viss-bridge",
            "endpoints": {"xroad": f"{base}/xroad", "xroad_wsdl": f"{base}/xroad?wsdl",
                          "catalog": f"{base}/catalog", "catalog_wsdl": f"{base}/catalog?wsdl",
                          "listClients": f"{base}/listClients", "health": f"{base}/health",
                          "access": f"{base}/access", "access_wsdl": f"{base}/access?wsdl",
                          "current_permissions": f"{base}/access/permissions",
                          "tracker_wsdl": f"{base}/tracker?wsdl",
                          "viss": f"{base}/viss", "viss_wsdl": f"{base}/viss?wsdl",
                          "metrics": f"{base}/metrics", "dcat": f"{base}/dcat",
                          "rest": f"{base}/rest/service_list", "rest_openapi": f"{base}/rest/openapi.json",
                          "xroad_rest": f"{base}/r1",  # /r1/INSTANCE/CLASS/MEMBER/SUBSYSTEM/listMethods
                          "console": f"{base}/console/"},
            "legacy_contracts": {name: f"{base}/legacy/{name}" for name in self.legacy.contracts.names()},
            "datasets": [d.dataset for d in published.catalog],
            "catalog_namespace": CATALOG_TNS,
        }, indent=2).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
            406: "Not Acceptable", 413: "Payload Too Large",
            500: "Internal Server Error", 503: "Service Unavailable"}


def _status(code: int) -> str:
    return f"{code} {_REASONS.get(code, 'Status')}"


# Methods the bridge serves, checked once for every endpoint: SOAP is
# POST; WSDLs and the HTTP pages are GET, and HEAD is GET without its body.
SERVED_METHODS = frozenset({"GET", "POST"})
ALLOW = "GET, HEAD, POST"


def _plain(start_response: StartResponse, code: int, text: str) -> Iterable[bytes]:
    body = text.encode()
    start_response(_status(code), [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
    return [body]


def _xml(start_response: StartResponse, body: bytes) -> Iterable[bytes]:
    return _send(start_response, 200, body, "text/xml; charset=utf-8")


def _send(start_response: StartResponse, status: int, body: bytes, content_type: str,
          headers: list[tuple[str, str]] | None = None) -> Iterable[bytes]:
    start_response(_status(status), [("Content-Type", content_type), ("Content-Length", str(len(body))),
                                     *(headers or [])])
    return [body]


def make_viss_facade(settings: Settings, engine: Any, sources: Any, policy: Any, registry: Any = None,
                     replay: ReplayTable | None = None) -> Any:
    """The /viss facade with its trust store, registered consumer certificates and replay table."""
    from viss_bridge.facade.viss import ConsumerCertificates, VissFacade
    from viss_bridge.facade.viss_state import VissState
    from viss_bridge.security.wssecurity import Freshness

    state = VissState(engine)
    state.create_schema()
    if replay is None:
        replay = ReplayTable(engine)
        replay.create_schema()
    trust = consumers = reply_key = None
    trust_ca = settings.viss_trust_ca or settings.wss_trust_ca  # VISS's own CA, else the node's WS-Security CA
    if trust_ca:
        from viss_bridge.security.pki import TrustStore

        trust = TrustStore.from_files(trust_ca)
        # registered consumer certificates: the file (with VISS participant ids), then the access registry's connections
        consumers = ConsumerCertificates(settings.viss_consumers or None, registry)
    if settings.viss_signing_cert and settings.viss_signing_key:
        from viss_bridge.security.keys import SigningKey

        reply_key = SigningKey.from_files(settings.viss_signing_cert, settings.viss_signing_key)
    return VissFacade(sources, policy, state, replay, trust, consumers,
                      Freshness(settings.viss_max_age, settings.wss_clock_skew), reply_key, f"{settings.base_url}/viss")


def create_app(settings: Settings) -> BridgeApp:
    from viss_bridge.xml import check_libxml_pair

    pair = check_libxml_pair()
    if not pair.matches:
        raise RuntimeError(f"lxml links libxml2 {pair.lxml} but xmlsec links {pair.xmlsec}: "
                           "install the pinned pair (pip install -e .) so XML trees can cross safely")
    return BridgeApp(settings)
