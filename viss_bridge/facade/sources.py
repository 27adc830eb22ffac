"""Where a facade reads a dataset's records: the store, or a legacy provider live.

The facades were written against :class:`DatasetStore`; :class:`SourceRouter`
has the same read interface and sends lookups of ``legacy_soap`` datasets in
``mode: live`` through the provider pool. Replicated datasets are read from
the store like any other (``viss-bridge sync`` keeps them filled), which is
what relieves the provider.
"""

from __future__ import annotations

import logging
from typing import Any

from prometheus_client import Counter, Histogram

from viss_bridge.catalog.legacy_source import LegacySoapSource
from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.store import DatasetStore, StoreUnavailable
from viss_bridge.facade import faults
from viss_bridge.facade.faults import BridgeFault
from viss_bridge.facade.soap_runtime import SpyneFault
from viss_bridge.upstream import errors as upstream_errors
from viss_bridge.upstream.errors import UpstreamError
from viss_bridge.upstream.pool import ProviderPool


log = logging.getLogger("viss_bridge.upstream")

PROVIDER_CALLS = Counter("viss_bridge_provider_calls_total", "HTTP exchanges with legacy providers (retries included)",
                         ["provider", "operation", "status"])
PROVIDER_LATENCY = Histogram("viss_bridge_provider_call_duration_seconds", "Duration of one HTTP exchange with a provider",
                             ["provider", "operation"])


def is_live(dataset: Dataset) -> bool:
    return isinstance(dataset.source, LegacySoapSource) and dataset.source.mode == "live"


def upstream_fault(error: UpstreamError) -> BridgeFault:
    """The consumer-facing fault for a provider-leg failure."""
    if error.cause == upstream_errors.LOGGING_FAILED:
        return BridgeFault(faults.LOGGING_FAILED, "The message log could not be written; the request was not served")
    return faults.service_failed(error.cause, error.message)


class SourceRouter:
    """Drop-in for the store's read side; lookups of live legacy datasets go to the provider."""

    def __init__(self, store: DatasetStore, pool: ProviderPool) -> None:
        self.store = store
        self.pool = pool

    def get(self, dataset: Dataset, key_values: dict[str, Any]) -> dict[str, Any] | None:
        if not is_live(dataset):
            return self.store.get(dataset, key_values)
        try:
            return self.pool.lookup(dataset, key_values)
        except UpstreamError as exc:
            # SpyneFault carries the fault through Spyne to the dialect's fault writer.
            raise SpyneFault(upstream_fault(exc)) from exc

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
    if exchange_id is not None:  # the message log (issue 4) ties both legs of one consumer call by this id
        info.exchange_id = exchange_id  # type: ignore[attr-defined]
    return Exchange(endpoint=f"provider/{call.provider}", dialect="legacy_soap", started_at=call.started_at,
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


def guarded_lookup(store: Any, permissions: Any, caller: Any, dataset: Dataset, key_values: dict[str, Any],
                   info: Any, empty_key_finds_nothing: bool = False) -> dict[str, Any] | None:
    """One lookup with the same access rules as /xroad: permission, person restrictions, use count, fields.

    For facades that do not run through Spyne (/legacy, /viss); raises BridgeFault.
    ``empty_key_finds_nothing``: an old contract whose provider answered an empty key with its
    not-found answer (not a fault) keeps doing so, after the same access decision.
    """
    from viss_bridge.catalog.values import ValueProblem

    decision = permissions.decide(caller, dataset)
    if not decision.allowed:
        raise BridgeFault(faults.ACCESS_DENIED, decision.message)
    try:
        empty = empty_key_finds_nothing and any(str(v).strip() == "" for v in key_values.values())
        record = None if empty else store.get(dataset, key_values)
    except ValueProblem as exc:
        raise BridgeFault(faults.INVALID_REQUEST, f"Invalid key: {exc}") from None
    except StoreUnavailable as exc:
        log.error("dataset store unavailable: %s", exc)
        raise faults.service_failed("DatabaseError", f"The dataset store is not available; the request for "
                                                     f"{dataset.dataset} was not served") from None
    except SpyneFault as exc:  # a live provider failed
        raise exc.bridge_fault from None
    persons = [str(record[dataset.subject])] if record and dataset.subject and record.get(dataset.subject) else []
    apply_use(permissions, decision, dataset, persons, info)
    if record is not None and decision.fields is not None:
        readable = set(decision.fields) | set(dataset.key)
        record = {k: v for k, v in record.items() if k in readable}
    return record


def apply_use(permissions: Any, decision: Any, dataset: Dataset, persons: list[str], info: Any,
              drop_withheld: bool = False) -> set[str]:
    """Refuse (or, for feeds, drop) persons who restricted the dataset; count the use; note the subjects."""
    from viss_bridge.access.registry import AccessStoreUnavailable
    from viss_bridge.facade.xroad import count_use, withheld_fault

    try:
        withheld = permissions.withheld(decision, dataset, persons) if persons else set()
    except AccessStoreUnavailable as exc:
        log.error("restriction store unavailable: %s", exc)
        raise faults.service_failed("DatabaseError", "The restriction register is not available; "
                                                     "the request was not served") from None
    if withheld and not drop_withheld:
        raise withheld_fault(dataset).bridge_fault
    served = [p for p in persons if p not in withheld]
    try:
        count_use(permissions, info, decision, dataset, served)
    except SpyneFault as exc:
        raise exc.bridge_fault from None
    info.subjects.extend(served)
    return set(withheld)
