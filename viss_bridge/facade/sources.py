"""Where a facade reads a dataset's records: the store, or a legacy provider live.

The facades were written against :class:`DatasetStore`; :class:`SourceRouter`
has the same read interface and sends lookups of ``legacy_soap`` datasets in
``mode: live`` through the provider pool, and those of ``platform`` datasets in ``mode: live``
through the platform pool (upstream/platform.py). Replicated datasets are read from
the store like any other (``viss-bridge sync`` keeps them filled), which is
what relieves the provider.
"""

from __future__ import annotations

import logging
from typing import Any

from viss_bridge.catalog.legacy_source import LegacySoapSource
from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.platform_source import PlatformSource
from viss_bridge.catalog.store import DatasetStore
from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.observability import PROVIDER_CALLS, PROVIDER_LATENCY
from viss_bridge.upstream import errors as upstream_errors
from viss_bridge.upstream.errors import UpstreamError
from viss_bridge.upstream.platform import PlatformPool
from viss_bridge.upstream.pool import ProviderPool


log = logging.getLogger("viss_bridge.upstream")

def is_live(dataset: Dataset) -> bool:
    return isinstance(dataset.source, (LegacySoapSource, PlatformSource)) and dataset.source.mode == "live"


def upstream_fault(error: UpstreamError) -> BridgeFault:
    """The consumer-facing fault for a provider-leg failure."""
    if error.cause == upstream_errors.LOGGING_FAILED:
        return BridgeFault(faults.LOGGING_FAILED, "The message log could not be written; the request was not served")
    return faults.service_failed(error.cause, error.message)


class SourceRouter:
    """Drop-in for the store's read side; lookups of live legacy datasets go to the provider."""

    def __init__(self, store: DatasetStore, pool: ProviderPool, platform: PlatformPool | None = None) -> None:
        self.store = store
        self.pool = pool
        self.platform = platform or PlatformPool()

    def get(self, dataset: Dataset, key_values: dict[str, Any]) -> dict[str, Any] | None:
        if not is_live(dataset):
            return self.store.get(dataset, key_values)
        try:
            if isinstance(dataset.source, PlatformSource):
                return self.platform.lookup(dataset, key_values)
            return self.pool.lookup(dataset, key_values)
        except UpstreamError as exc:
            raise upstream_fault(exc) from exc

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def provider_exchange(call: Any) -> Any:
    """A provider-leg :class:`~viss_bridge.facade.exchange.Exchange` from an upstream ProviderCall."""
    from viss_bridge.facade.exchange import CallInfo, Exchange

    caller = call.caller if isinstance(call.caller, CallInfo) else None
    info = CallInfo(client=caller.client if caller else None, service=f"{call.provider}/{call.operation}",
                    operation=call.operation, message_id=caller.message_id if caller else None,
                    user_id=caller.user_id if caller else None)
    exchange_id = getattr(caller, "exchange_id", None)
    if exchange_id is not None:  # the message log ties both legs of one consumer call by this id
        info.exchange_id = exchange_id  # type: ignore[attr-defined]
    return Exchange(endpoint=f"provider/{call.provider}", dialect=getattr(call, "dialect", "legacy_soap"), started_at=call.started_at,
                    duration_ms=call.duration_ms, request=call.request, response=call.response,
                    status=call.status or 0, info=info, leg="provider", peer=f"{call.provider} {call.address}",
                    error=call.error)


class ProviderLegSink:
    """Hands every provider exchange to the server's exchange sinks (the message log).

    A sink that fails makes the provider call fail with LoggingFailed, so a provider's answer is never used
    unlogged.
    """

    def __init__(self, sinks: list[Any]) -> None:
        self.sinks = sinks  # the server's list, shared: sinks added later are seen

    def record(self, call: Any) -> None:
        outcome = str(call.status) if call.status is not None else "no-answer"
        PROVIDER_CALLS.labels(call.provider, call.operation, outcome).inc()
        PROVIDER_LATENCY.labels(call.provider, call.operation).observe(call.duration_ms / 1000)
        log.info("provider call", extra={"provider": call.provider, "operation": call.operation, "address": call.address,
                                         "status": call.status, "attempt": call.attempt, "error": call.error,
                                         "duration_ms": call.duration_ms,
                                         "message_id": getattr(call.caller, "message_id", None)})
        if not self.sinks:
            return
        exchange = provider_exchange(call)
        for sink in self.sinks:
            sink.record(exchange)
