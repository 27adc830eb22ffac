"""Provider clients shared by every dataset of a process, and dataset-level reads through them."""

from __future__ import annotations

import datetime as dt
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from viss_bridge.catalog.legacy_source import LegacySoapSource, map_to_dataset, since_text
from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.values import ValueProblem, record_to_python, to_python
from viss_bridge.upstream import errors
from viss_bridge.upstream.client import ProviderCallSink, ProviderClient
from viss_bridge.upstream.errors import UpstreamError


@dataclass
class ChangesPage:
    records: list[dict[str, Any]]  # dataset records (Python values)
    last_changed_at: dt.datetime | None
    last_key: str | None
    more: bool


def legacy_source(dataset: Dataset) -> LegacySoapSource:
    source = dataset.source
    if not isinstance(source, LegacySoapSource):
        raise ValueError(f"dataset {dataset.dataset} does not have a legacy_soap source")
    return source


def base_dir(dataset: Dataset) -> Path:
    return Path(dataset.origin).resolve().parent if dataset.origin else Path.cwd()


class ProviderPool:
    """One :class:`ProviderClient` per provider name, created on first use and reused by all threads.

    If a manifest changes a provider's settings (WSDL, address, timeouts...), the next call builds a
    new client for it; datasets sharing a provider must agree on those settings.
    """

    def __init__(self, sink: ProviderCallSink | None = None) -> None:
        self.sink = sink
        self._clients: dict[str, tuple[str, ProviderClient]] = {}
        self._failures: dict[str, tuple[str, float, UpstreamError]] = {}
        self._lock = threading.Lock()

    def client(self, dataset: Dataset) -> ProviderClient:
        source = legacy_source(dataset)
        key = source.settings_key() + str(base_dir(dataset))
        with self._lock:
            known = self._clients.get(source.provider)
            if known is not None and known[0] == key:
                return known[1]
            failed = self._failures.get(source.provider)
            if failed is not None and failed[0] == key and time.monotonic() - failed[1] < source.breaker.reset_after:
                # A WSDL that could not be loaded is not fetched again on every request (it may be the
                # provider's own ?wsdl, and the provider may be down): fail fast until reset_after passes.
                raise UpstreamError(failed[2].cause, source.provider, failed[2].message, called=False)
            try:
                client = ProviderClient(source, base_dir(dataset), self.sink)
            except UpstreamError as exc:
                self._failures[source.provider] = (key, time.monotonic(), exc)
                raise
            self._failures.pop(source.provider, None)
            self._clients[source.provider] = (key, client)
            return client

    def breaker_states(self) -> dict[str, str]:
        with self._lock:
            return {name: client.breaker.state for name, (_, client) in self._clients.items()}

    # -- dataset reads -------------------------------------------------------

    def lookup(self, dataset: Dataset, key_values: dict[str, Any]) -> dict[str, Any] | None:
        """The record with this key from the provider, or None if it has none."""
        source = legacy_source(dataset)
        client = self.client(dataset)
        arguments = {element: _wire(dataset, name, key_values.get(name)) for element, name in source.lookup.request.items()}
        answer = client.call(source.lookup.operation, arguments, read=True)
        legacy = _unwrap(client, source.lookup.operation, source.lookup.result, answer)
        if legacy is None:
            return None
        return _record(dataset, source, legacy)

    def changes(self, dataset: Dataset, since: dt.datetime, after_key: str | None) -> ChangesPage:
        """One page of records changed after (since, after_key), oldest first."""
        source = legacy_source(dataset)
        spec = source.changes
        if spec is None:
            raise UpstreamError(errors.PROVIDER_CONFIG, source.provider,
                                f"dataset {dataset.dataset} has no changes operation configured", called=False)
        client = self.client(dataset)
        arguments: dict[str, Any] = {spec.since: since_text(since)}
        if spec.after_key and after_key:
            arguments[spec.after_key] = after_key
        if spec.page_size_element:
            arguments[spec.page_size_element] = spec.page_size
        answer = client.call(spec.operation, arguments, read=True)
        if not isinstance(answer, dict):
            raise UpstreamError(errors.INVALID_RESPONSE, source.provider, f"{spec.operation} answered {answer!r}")
        items = answer.get(spec.items) or []
        if not isinstance(items, list):
            items = [items]
        records: list[dict[str, Any]] = []
        last_at: dt.datetime | None = None
        for item in items:
            record = _record(dataset, source, item.get(spec.record))
            changed = item.get(spec.changed_at)
            if not isinstance(changed, dt.datetime):
                raise UpstreamError(errors.INVALID_RESPONSE, source.provider,
                                    f"{spec.operation}: {spec.changed_at} is not a dateTime: {changed!r}")
            changed = changed if changed.tzinfo else changed.replace(tzinfo=dt.timezone.utc)
            records.append(record)
            last_at = changed.astimezone(dt.timezone.utc)
        more = bool(answer.get(spec.more)) if spec.more else len(records) >= spec.page_size
        last_key = None
        if records and spec.after_key:
            last_key = str(records[-1][next(name for name in source.lookup.request.values())])
        return ChangesPage(records, last_at, last_key, more)


def _wire(dataset: Dataset, name: str, value: Any) -> Any:
    if value in (None, ""):
        raise ValueProblem(f"key field '{name}' is missing")
    return to_python(dataset.field(name), value)


def _unwrap(client: ProviderClient, operation: str, result: str, answer: Any) -> Any:
    """zeep returns the only child of a response wrapper directly, else an object with every child."""
    if len(client.output_elements(operation)) == 1:
        return answer
    if isinstance(answer, dict):
        return answer.get(result)
    return None


def _record(dataset: Dataset, source: LegacySoapSource, legacy: Any) -> dict[str, Any]:
    if not isinstance(legacy, dict):
        raise UpstreamError(errors.INVALID_RESPONSE, source.provider,
                            f"expected a record element from provider {source.provider}, got {legacy!r}")
    try:
        return record_to_python(dataset.fields, map_to_dataset(source.fields, legacy, dataset.fields))
    except ValueError as exc:
        raise UpstreamError(errors.INVALID_RESPONSE, source.provider,
                            f"a record from provider {source.provider} does not fit dataset {dataset.dataset}: {exc}") from exc
