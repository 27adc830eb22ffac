"""Run the bridge under gunicorn (several worker processes), as in production.

Each worker builds its own :class:`BridgeApp` after the fork, so database
connections are never shared between processes. Prometheus metrics from all
workers are merged through a multiprocess directory that is created fresh at
start.
"""

from __future__ import annotations

import errno
import logging
import os
import select
import shutil
import socket
import ssl
import tempfile
import threading
import time
from typing import Any, Callable

from gunicorn.app.base import BaseApplication
from gunicorn.http import errors as http_errors
from gunicorn.workers.gthread import TConn, ThreadWorker

from viss_bridge.config import Settings

log = logging.getLogger(__name__)


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
READ_DEADLINE_ENV = "viss_bridge.read_deadline"  # monotonic time by which the request must have arrived

_TIMEOUT_TEXT = b"the request did not arrive in time; closing\r\n"
_REQUEST_TIMEOUT_ANSWER = (b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\n"
                           b"Content-Type: text/plain; charset=utf-8\r\n"
                           b"Content-Length: %d\r\n\r\n" % len(_TIMEOUT_TEXT)) + _TIMEOUT_TEXT


class RequestReadTimeout(TimeoutError):
    """The client did not deliver its request (headers and body) within ``request_read_timeout``."""


class _DeadlineSocket:
    """The connection's socket as gunicorn's HTTP parser reads it, with one deadline for the whole request.

    A per-``recv`` timeout alone lets a client that trickles one byte at a time hold a thread for
    ever; here every read gets only what is left of the request's budget. A client that is too slow
    with its headers gets a 408 and the connection closes (the app never sees it); one that is too
    slow with its body (e.g. declares a longer Content-Length than it sends) makes the app's body
    read raise :class:`RequestReadTimeout`, which the SOAP faces answer with their own 408 fault.
    Writes keep a fixed timeout so that a client that does not read its answer cannot hold a thread.
    """

    def __init__(self, conn: "BoundedConnection") -> None:
        self._conn = conn

    def recv(self, size: int) -> bytes:
        conn = self._conn
        sock = conn.sock
        left = conn.deadline - time.monotonic()
        try:
            if left <= 0:
                raise socket.timeout("request read deadline passed")
            sock.settimeout(left)
            return sock.recv(size)
        except (socket.timeout, ssl.SSLError) as exc:
            if isinstance(exc, ssl.SSLError) and "timed out" not in str(exc):
                raise
            conn.timed_out = True
            if not conn.in_app:  # still reading headers: answer here and close quietly
                try:
                    sock.settimeout(1.0)
                    sock.sendall(_REQUEST_TIMEOUT_ANSWER)
                except OSError:
                    pass
                log.warning("request headers not received in time; answered 408 and closed",
                            extra={"remote_addr": str(conn.client[0]) if conn.client else "-"})
                raise http_errors.NoMoreData() from None
            raise RequestReadTimeout(f"the request body did not arrive within {conn.read_timeout:g} s") from None
        finally:
            try:
                sock.settimeout(conn.write_timeout)
            except OSError:
                pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn.sock, name)


class BoundedConnection(TConn):  # type: ignore[misc]
    """gunicorn's threaded-worker connection, with a read deadline per request and the TLS peer certificate.

    ``init`` runs in the worker thread before each request on the connection (new, kept alive or
    deferred): that is where the request's deadline starts and where the TLS handshake (bounded too)
    has completed.
    """

    read_timeout: float = 10.0
    write_timeout: float = 30.0

    def __init__(self, cfg: Any, sock: Any, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.deadline = 0.0
        self.timed_out = False
        self.in_app = False
        self.peer_der: bytes | None = None

    def init(self) -> None:
        self.deadline = time.monotonic() + self.read_timeout
        self.timed_out = False
        self.in_app = False
        first = not self.initialized
        if first:
            self.sock.settimeout(self.read_timeout)  # bounds the TLS handshake too (the wrapper inherits it)
        try:
            super().init()
        except (socket.timeout, ssl.SSLError) as exc:
            if isinstance(exc, ssl.SSLError) and "timed out" not in str(exc):
                raise
            raise http_errors.NoMoreData() from None
        if first:
            getpeercert = getattr(self.sock, "getpeercert", None)
            try:
                self.peer_der = getpeercert(binary_form=True) if getpeercert else None
            except ValueError:  # no handshake: no certificate
                self.peer_der = None
            unreader = getattr(self.parser, "unreader", None)
            if unreader is not None and hasattr(unreader, "sock"):
                unreader.sock = _DeadlineSocket(self)
        self.sock.settimeout(self.write_timeout)


class BridgeWorker(ThreadWorker):  # type: ignore[misc]
    """gunicorn's threaded worker (keep-alive, several requests at once), bounded against slow clients.

    A sync worker serves one connection at a time, so two clients that declare a longer body than
    they send stop a two-worker node. Here each worker process runs ``worker_threads`` threads and
    keeps idle keep-alive connections on a poller (no thread held); every request must arrive
    within ``request_read_timeout`` (see :class:`_DeadlineSocket`). The TLS client certificate is
    read from the connection's socket and put into ``environ["viss_bridge.peer_cert_der"]``: gunicorn
    verifies it during the handshake but does not pass it on, and a value a client sends in an HTTP
    header can never reach that key.
    """

    def load_wsgi(self) -> None:
        super().load_wsgi()
        inner = self.wsgi
        current = self._current = threading.local()
        settings = getattr(self.app, "settings", None)
        self._read_timeout = float(getattr(settings, "request_read_timeout", BoundedConnection.read_timeout))
        self._linger = max(0.0, float(getattr(settings, "keepalive_linger_ms", 0))) / 1000

        def with_connection_facts(environ: dict[str, Any], start_response: Any) -> Any:
            conn = getattr(current, "conn", None)
            environ.pop(PEER_CERT_ENV, None)
            if conn is not None:
                if conn.peer_der:
                    environ[PEER_CERT_ENV] = conn.peer_der
                environ[READ_DEADLINE_ENV] = conn.deadline
            return inner(environ, start_response)

        self.wsgi = with_connection_facts

    def handle(self, conn: Any) -> Any:
        """Serve the connection's request, then, for a short while, the next one on it in the same thread.

        gunicorn hands a kept-alive connection back to the main thread's poller after every request, and
        the next request travels poller -> queue -> pool thread: three threads of one process each
        waiting for the GIL while the others work, about a third of a request's time at four keep-alive
        callers (benchmarks/RESULTS.md, issue 12). A consumer that calls again at once is served here
        instead, if its request starts within ``keepalive_linger_ms`` and no other connection is waiting
        for a thread; otherwise the connection goes back to the poller as before. Each request still
        gets its own read deadline (``BoundedConnection.init``).
        """
        result = super().handle(conn)
        while result is True and self._linger > 0 and self.alive and not conn.is_http2 and self._next_ready(conn):
            result = super().handle(conn)
        return result

    def _next_ready(self, conn: Any) -> bool:
        if conn.parser.unreader.buf.getvalue():
            return True  # the body drain read the start of the next request already
        queue = getattr(self.tpool, "_work_queue", None)  # concurrent.futures keeps no public count of it
        if queue is not None and queue.qsize() > 0:
            return False  # another connection waits for a thread: give this one back
        pending = getattr(conn.sock, "pending", None)  # TLS: bytes already decrypted
        if pending is not None and pending() > 0:
            return True
        try:
            poller = select.poll()  # not select.select: it cannot wait on descriptors past 1023
            poller.register(conn.sock, select.POLLIN)
            return bool(poller.poll(self._linger * 1000))
        except (OSError, ValueError):
            return False

    def accept(self, listener: Any) -> None:
        try:
            client_sock, client_addr = listener.accept()
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                raise
            return
        self.nr_conns += 1
        client_sock.setblocking(True)
        conn = BoundedConnection(self.cfg, client_sock, client_addr, listener.getsockname())
        conn.read_timeout = self._read_timeout
        self.enqueue_req(conn)

    def handle_request(self, req: Any, conn: Any) -> Any:
        self._current.conn = conn
        conn.in_app = True
        try:
            keep_alive = super().handle_request(req, conn)
        finally:
            self._current.conn = None
        # A request whose body did not arrive leaves the stream at an unknown place: never reuse it.
        return keep_alive and not getattr(conn, "timed_out", False)


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
        "worker_class": "viss_bridge.serving.BridgeWorker",
        "threads": settings.worker_threads,
        "keepalive": settings.keepalive_seconds,
        "worker_connections": max(settings.worker_connections, settings.worker_threads + 1),
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
