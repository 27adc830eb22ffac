"""Structured logs and Prometheus metrics.

Logs are one JSON object per line so an operator can grep a fault id or feed
them to a log system; metrics count requests and time them per endpoint and
service. Under gunicorn with several workers the metrics use
prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), so
``/metrics`` adds up all workers instead of showing whichever one answered.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from typing import Any, Container

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess

REQUESTS = Counter("viss_bridge_requests_total", "SOAP and HTTP requests answered",
                   ["endpoint", "service", "outcome"])
LATENCY = Histogram("viss_bridge_request_duration_seconds", "Time from request read to response ready",
                    ["endpoint", "service"],
                    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
FAULTS = Counter("viss_bridge_faults_total", "Faults answered, by code", ["endpoint", "code"])
CATALOG_DATASETS = Gauge("viss_bridge_catalog_datasets", "Datasets published by this worker",
                         multiprocess_mode="max")
CATALOG_RELOADS = Counter("viss_bridge_catalog_reloads_total", "Catalog reloads", ["result"])
# The message log, as the exchanges' sink sees it.
APPEND_SECONDS = Histogram("viss_bridge_msglog_append_seconds", "Time to commit one exchange to the message log",
                           buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
APPEND_FAILURES = Counter("viss_bridge_msglog_append_failures_total",
                          "Exchanges refused with LoggingFailed because the log could not be written")
# Legacy providers, one label set per configured provider and operation.
PROVIDER_CALLS = Counter("viss_bridge_provider_calls_total", "HTTP exchanges with legacy providers (retries included)",
                         ["provider", "operation", "status"])
PROVIDER_LATENCY = Histogram("viss_bridge_provider_call_duration_seconds",
                             "Duration of one HTTP exchange with a provider", ["provider", "operation"])

# The label value every name that is not configured shares, so callers cannot grow /metrics.
UNKNOWN_LABEL = "unknown"


def bounded_label(value: str | None, known: Container[str]) -> str:
    """``value`` as a metrics label if it is a configured name, else the one shared :data:`UNKNOWN_LABEL`.

    Every label set is a time series kept for the life of the process (and a file per worker in
    multiprocess mode), so a label taken from a request (a serviceCode, an operation element) would let
    any caller grow ``/metrics`` and the node's memory without bound.
    """
    if not value:
        return "-"
    return value if value in known else UNKNOWN_LABEL


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "pid": record.process,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "INFO", fmt: str = "json") -> None:
    # Every served request writes one line. Neither format prints the caller's file, line, thread or
    # process name, so the logging module need not collect them for every record (the "optimization"
    # switches of the logging HOWTO; walking the stack for the caller was most of a line's cost).
    logging._srcfile = None
    logging.logThreads = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("spyne", "zeep", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # Spyne logs every fault it serialises at ERROR with a traceback; the bridge logs its own.
    logging.getLogger("spyne.application").setLevel(logging.CRITICAL)
    logging.getLogger("spyne.server").setLevel(logging.CRITICAL)


def metrics_text() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # unannotated upstream
        return generate_latest(registry)
    return generate_latest()
