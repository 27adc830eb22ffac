"""Operator's pages: datasets (source, records, last sync, reload errors), clients and certificates, health.

Figures come from the serving node itself: its published catalog version and reload error
(file, line and field, as /health says), the store's counts, the sync cursors, the access
registry, ``BridgeApp.health`` and the Prometheus registry that /metrics renders.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from typing import Any

from werkzeug.wrappers import Response

from viss_bridge.console.accounts import OPERATOR
from viss_bridge.console.charts import bars
from viss_bridge.console.web import Page, PageContext

EXPIRY_WARNING = dt.timedelta(days=30)


def datasets(ctx: PageContext) -> Response:
    from viss_bridge.upstream.sync import SyncState

    catalog = ctx.node.current().catalog
    counts = ctx.node.store.counts()
    state = SyncState(ctx.node.engine)
    state.create_schema()
    synced = {cursor.dataset: (cursor, at) for cursor, at in state.all()}
    rows = []
    for dataset in sorted(catalog, key=lambda d: d.dataset):
        cursor, at = synced.get(dataset.dataset, (None, None))
        rows.append({"dataset": dataset, "source": dataset.source.kind, "records": counts.get(dataset.dataset, 0),
                     "synced_at": at, "sync_error": cursor.last_error if cursor is not None else None,
                     "title": dataset.title.lv if ctx.lang == "lv" else dataset.title.en})
    errors = (ctx.node.reload_error or "").splitlines()
    return ctx.render("datasets.html", rows=rows, errors=errors, version=catalog.version_hash,
                      folder=str(ctx.node.catalog_folder), total=sum(r["records"] for r in rows))


def clients(ctx: PageContext) -> Response:
    now = dt.datetime.now(dt.timezone.utc)
    registry = ctx.node.registry
    held: dict[str, int] = defaultdict(int)
    for permission in registry.permissions():
        if permission.usable(now):
            held[permission.client_id] += 1
    rows = []
    for client in registry.clients():
        certificates = []
        for certificate in registry.certificates(client.client_id):
            not_after = dt.datetime.fromisoformat(certificate["not_after"])
            certificates.append({**certificate, "not_after": not_after,
                                 "state": "expired" if not_after <= now else
                                 "soon" if not_after - now <= EXPIRY_WARNING else "ok",
                                 "days": (not_after - now).days})
        rows.append({"client": client, "certificates": certificates, "permissions": held.get(client.client_id, 0)})
    return ctx.render("clients.html", rows=rows, warning_days=EXPIRY_WARNING.days)


def metric_figures() -> dict[str, Any]:
    """Requests per endpoint, faults per code, and the latency distribution, from the node's registry."""
    from prometheus_client.parser import text_string_to_metric_families

    from viss_bridge.observability import metrics_text

    per_endpoint: dict[str, float] = defaultdict(float)
    faults: dict[str, float] = defaultdict(float)
    buckets: dict[float, float] = defaultdict(float)
    for family in text_string_to_metric_families(metrics_text().decode()):
        for sample in family.samples:
            if sample.name == "viss_bridge_requests_total":
                per_endpoint[sample.labels.get("endpoint", "?")] += sample.value
            elif sample.name == "viss_bridge_faults_total":
                faults[sample.labels.get("code", "?")] += sample.value
            elif sample.name == "viss_bridge_request_duration_seconds_bucket":
                buckets[float(sample.labels["le"])] += sample.value
    total = buckets.get(float("inf"), 0.0)
    latency = [(f"≤ {le * 1000:g} ms", round(100.0 * n / total, 1)) for le, n in sorted(buckets.items())
               if le != float("inf") and le <= 1.0] if total else []
    return {"endpoints": sorted(per_endpoint.items(), key=lambda kv: -kv[1]),
            "faults": sorted(faults.items(), key=lambda kv: -kv[1])[:10], "latency": latency,
            "requests": sum(per_endpoint.values())}


def health(ctx: PageContext) -> Response:
    ok, report = ctx.node.health()
    figures = metric_figures()
    return ctx.render("health.html", ok=ok, report=report, figures=figures,
                      endpoint_chart=bars(figures["endpoints"]) if figures["endpoints"] else None,
                      fault_chart=bars(figures["faults"]) if figures["faults"] else None,
                      latency_chart=bars(figures["latency"], unit="%") if figures["latency"] else None)


PAGES = [
    Page("/datasets", OPERATOR, datasets, title="Datasets", group="operator"),
    Page("/clients", OPERATOR, clients, title="Clients and certificates", group="operator"),
    Page("/health", OPERATOR, health, title="Health", group="operator"),
]
