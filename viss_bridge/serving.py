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
        return create_app(self.settings)


def serve(settings: Settings, on_ready: Callable[[], None] | None = None, timeout: int = 60) -> None:
    """Serve until interrupted (SIGINT/SIGTERM stop gracefully; SIGHUP reloads workers)."""
    prepare_metrics_dir()
    options = {
        "bind": f"{settings.host}:{settings.port}",
        "workers": settings.workers,
        "worker_class": "sync",
        "timeout": timeout,
        "graceful_timeout": 10,
        "accesslog": None,
        "errorlog": "-",
        "loglevel": "warning",
        "proc_name": f"viss-bridge[{settings.node_id}]",
        # A request larger than this never reaches the app; the app's own limit gives the SOAP fault.
        "limit_request_line": 8190,
    }
    _Gunicorn(settings, options, on_ready).run()
