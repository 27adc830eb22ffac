"""Run the bridge under gunicorn (several worker processes), as in production.

Each worker builds its own :class:`BridgeApp` after the fork, so database
connections are never shared between processes. Prometheus metrics from all
workers are merged through a multiprocess directory that is created fresh at
start.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import Any, Callable

from gunicorn.app.base import BaseApplication
from gunicorn.workers.sync import SyncWorker

from viss_bridge.config import Settings


def prepare_metrics_dir() -> str:
    """Must run before prometheus_client is imported anywhere in this process tree."""
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        path = tempfile.mkdtemp(prefix="viss-bridge-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    else:
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path, exist_ok=True)
    return path


PEER_CERT_ENV = "viss_bridge.peer_cert_der"  # same key as viss_bridge.access.identity.PEER_CERT_ENV


class PeerCertWorker(SyncWorker):  # type: ignore[misc]
    """gunicorn's sync worker, plus the TLS client certificate in the WSGI environ.

    gunicorn verifies the client certificate during the handshake (``ca_certs``,
    ``cert_reqs``) but does not pass it to the application. This worker reads
    it from the connection's socket (one request at a time per sync worker)
    and puts its DER bytes into ``environ["viss_bridge.peer_cert_der"]``. A
    value sent by the client in an HTTP header can never reach that key.
    """

    _peer_der: bytes | None = None

    def load_wsgi(self) -> None:
        super().load_wsgi()
        inner = self.wsgi

        def with_peer_certificate(environ: dict[str, Any], start_response: Any) -> Any:
            environ.pop(PEER_CERT_ENV, None)
            if self._peer_der:
                environ[PEER_CERT_ENV] = self._peer_der
            return inner(environ, start_response)

        self.wsgi = with_peer_certificate

    def handle_request(self, listener: Any, req: Any, client: Any, addr: Any) -> Any:
        getpeercert = getattr(client, "getpeercert", None)
        try:
            self._peer_der = getpeercert(binary_form=True) if getpeercert else None
        except ValueError:  # handshake not done: no certificate
            self._peer_der = None
        try:
            return super().handle_request(listener, req, client, addr)
        finally:
            self._peer_der = None


def tls_options(settings: Settings) -> dict[str, Any]:
    """gunicorn TLS settings from the bridge's settings (empty when the bridge serves plain http)."""
    if not settings.tls_certfile:
        return {}
    import ssl

    options: dict[str, Any] = {"certfile": settings.tls_certfile, "keyfile": settings.tls_keyfile}
    if settings.tls_client_ca:
        options["ca_certs"] = settings.tls_client_ca
        options["cert_reqs"] = ssl.CERT_REQUIRED if settings.tls_require_client_cert else ssl.CERT_OPTIONAL
    return options


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, settings: Settings, options: dict[str, Any], on_ready: Callable[[], None] | None) -> None:
        self.settings = settings
        self.options = options
        self.on_ready = on_ready
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

        def child_exit(_server: Any, worker: Any) -> None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.pid)

        def when_ready(_server: Any) -> None:
            if self.on_ready:
                self.on_ready()

        self.cfg.set("child_exit", child_exit)
        self.cfg.set("when_ready", when_ready)

    def load(self) -> Any:
        from viss_bridge.observability import setup_logging
        from viss_bridge.server import create_app

        setup_logging(self.settings.log_level, self.settings.log_format)
        app = create_app(self.settings)
        tune_garbage_collection()
        return app


def tune_garbage_collection() -> None:
    """Stop Spyne's once-a-second full collection from costing a busy worker ~12 % of its CPU.

    Spyne calls ``gc.collect()`` at most once a second per process to close contexts' file handles
    (the bridge passes none); with the catalog's Spyne classes a full collection takes ~34 ms
    (benchmarks/RESULTS.md). Python's own generational collector keeps running; the objects built
    at start-up (catalog, Spyne apps) are frozen out of it, so its full collections stay short too.
    """
    import gc

    import spyne.const

    spyne.const.MIN_GC_INTERVAL = float("inf")
    gc.collect()
    gc.freeze()


def serve(settings: Settings, on_ready: Callable[[], None] | None = None, timeout: int = 60) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop gracefully; SIGHUP reloads workers)."""
    prepare_metrics_dir()
    options = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "worker_class": "viss_bridge.serving.PeerCertWorker",
        "timeout": timeout,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": f"viss-bridge[{settings.node_id}]",
        # A request larger than this never reaches the app; the app's own limit gives the SOAP fault.
        "limit_request_line": 8190,
    }
    options.update(tls_options(settings))
    _Gunicorn(settings, options, on_ready).run()
