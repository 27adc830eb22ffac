"""Replication: pull a legacy provider's (or the platform's) records into the store through its changes feed.

A replicated dataset (``source.mode: replicated``) is served from the store, so
consumers no longer call the provider at all; this job keeps the copy fresh.

* The first run pulls everything (changes since the epoch), later runs only
  what changed since the persisted cursor: the last (changed-at, key) applied.
* One transaction per page: the page's records and the cursor move commit
  together, so readers never see half a page and a crash never loses or
  repeats more than the page in flight.
* A failure midway (provider down, fault, timeout) stops the run with the
  cursor at the last applied page; the next run resumes from there.
* A ``platform`` dataset walks the platform's feed (``/rest/{dataset}/changes``): its
  cursor is the feed's ``next_since`` (kept in ``after_key``; ``changed_since`` holds the
  last change's time), and deletions the feed reports are applied as tombstones.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from sqlalchemy import Boolean, Column, DateTime, Integer, MetaData, String, Table, Text, select
from sqlalchemy.engine import Connection, Engine

from viss_bridge.catalog.legacy_source import LegacySoapSource
from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.platform_source import PlatformSource
from viss_bridge.catalog.store import DatasetStore
from viss_bridge.db import create_tables
from viss_bridge.upstream.errors import UpstreamError
from viss_bridge.upstream.platform import PlatformPool
from viss_bridge.upstream.pool import ChangesPage, ProviderPool

log = logging.getLogger(__name__)

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)

metadata = MetaData()

cursors = Table(
    "sync_cursors",
    metadata,
    Column("dataset", String(64), primary_key=True),
    Column("changed_since", DateTime(timezone=True), nullable=False),
    Column("after_key", String(512), nullable=True),
    Column("full_done", Boolean, nullable=False, default=False),
    Column("pages", Integer, nullable=False, default=0),
    Column("records", Integer, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text, nullable=True),
)


@dataclass
class Cursor:
    dataset: str
    changed_since: dt.datetime = EPOCH
    after_key: str | None = None
    full_done: bool = False
    pages: int = 0
    records: int = 0
    last_error: str | None = None


@dataclass
class SyncResult:
    dataset: str
    pages: int = 0
    records: int = 0
    full: bool = False
    complete: bool = False
    error: UpstreamError | None = None
    cursor: Cursor | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self, in_store: int) -> str:
        """One line an operator reads: what moved, where the cursor stands, what to do on a failure."""
        cursor = self.cursor
        where = f"cursor {cursor.changed_since.isoformat()} / {cursor.after_key or '-'}" if cursor else ""
        if self.error is not None:
            return (f"{self.dataset}: stopped after {self.pages} page(s), {self.records} record(s): "
                    f"{self.error.cause}: {self.error.message}; {where}; run again to resume")
        state = "up to date" if self.complete else "more pages remain"
        return (f"{self.dataset}: {'full' if self.full else 'incremental'} sync, {self.pages} page(s), "
                f"{self.records} record(s) in {self.seconds} s; {state}; {in_store} in store; {where}")


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


class SyncState:
    """Cursors in the same database as the store (so a page and its cursor commit together)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        create_tables(metadata, self.engine)

    def get(self, dataset: str) -> Cursor:
        with self.engine.connect() as conn:
            row = conn.execute(select(cursors).where(cursors.c.dataset == dataset)).first()
        if row is None:
            return Cursor(dataset)
        return Cursor(dataset, _aware(row.changed_since), row.after_key, bool(row.full_done), row.pages, row.records,
                      row.last_error)

    def all(self) -> list[tuple[Cursor, dt.datetime]]:
        """Every cursor with the time it last moved (for ``viss-bridge sync --status``)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(cursors).order_by(cursors.c.dataset)).all()
        return [(Cursor(r.dataset, _aware(r.changed_since), r.after_key, bool(r.full_done), r.pages, r.records,
                        r.last_error), _aware(r.updated_at)) for r in rows]

    def save(self, conn: Connection, cursor: Cursor) -> None:
        values = {"changed_since": cursor.changed_since, "after_key": cursor.after_key, "full_done": cursor.full_done,
                  "pages": cursor.pages, "records": cursor.records, "last_error": cursor.last_error,
                  "updated_at": dt.datetime.now(dt.timezone.utc)}
        updated = conn.execute(cursors.update().where(cursors.c.dataset == cursor.dataset).values(**values)).rowcount
        if not updated:
            conn.execute(cursors.insert().values(dataset=cursor.dataset, **values))

    def note_error(self, cursor: Cursor, error: str) -> None:
        cursor.last_error = error
        with self.engine.begin() as conn:
            self.save(conn, cursor)

    def reset(self, dataset: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(cursors.delete().where(cursors.c.dataset == dataset))


class SyncJob:
    """Runs one dataset's replication until the provider has nothing newer (or fails)."""

    def __init__(self, dataset: Dataset, store: DatasetStore, pool: ProviderPool, state: SyncState,
                 platform: PlatformPool | None = None) -> None:
        is_platform = isinstance(dataset.source, PlatformSource)
        if not is_platform and (not isinstance(dataset.source, LegacySoapSource) or dataset.source.changes is None):
            raise ValueError(f"dataset {dataset.dataset} has no legacy_soap source with a changes operation "
                             "and no platform source")
        self.dataset = dataset
        self.store = store
        self.pool = pool
        self.state = state
        self.platform = (platform or PlatformPool()) if is_platform else None

    def _page(self, cursor: Cursor) -> tuple[ChangesPage, list[dict[str, Any]], str | None]:
        """The next page after the cursor: (records page, keys deleted, a note), from either kind of source."""
        if self.platform is None:
            return self.pool.changes(self.dataset, cursor.changed_since, cursor.after_key), [], None
        feed = self.platform.changes(self.dataset, int(cursor.after_key or 0))
        note = (f"{feed.withheld} change(s) withheld by the platform (persons' restrictions), not copied"
                if feed.withheld else None)
        page = ChangesPage(feed.records, feed.last_changed_at or cursor.changed_since, str(feed.next_since), feed.more)
        return page, feed.deleted, note

    def run(self, max_pages: int | None = None,
            progress: Callable[[int, int | None], None] | None = None) -> SyncResult:
        """Pull pages until the feed is drained (or ``max_pages``); ``progress(records, None)`` after each page."""
        started = time.monotonic()
        cursor = self.state.get(self.dataset.dataset)
        result = SyncResult(self.dataset.dataset, full=not cursor.full_done, cursor=cursor)
        if cursor.last_error:
            result.notes.append(f"resuming after: {cursor.last_error}")
        while max_pages is None or result.pages < max_pages:
            try:
                page, deleted, note = self._page(cursor)
            except UpstreamError as exc:
                result.error = exc
                self.state.note_error(cursor, f"{exc.cause}: {exc.message}")
                log.warning("sync stopped; it resumes from the last applied page",
                            extra={"dataset": self.dataset.dataset, "cause": exc.cause, "pages": result.pages})
                break
            if note:
                result.notes.append(note)
            if page.records or self.platform is not None:
                assert page.last_changed_at is not None
                cursor.changed_since = page.last_changed_at
                cursor.after_key = page.last_key
            for key in deleted:  # tombstones first: the page's records and the cursor then commit together
                self.store.delete(self.dataset, key)
            cursor.pages += 1
            cursor.records += len(page.records) + len(deleted)
            cursor.last_error = None
            if not page.more:
                cursor.full_done = True
            snapshot = Cursor(**vars(cursor))
            self.store.upsert(self.dataset, page.records, also=lambda conn: self.state.save(conn, snapshot))
            result.pages += 1
            result.records += len(page.records) + len(deleted)
            if progress is not None:
                progress(result.records, None)
            if not page.more:
                result.complete = True
                break
        result.seconds = round(time.monotonic() - started, 3)
        result.cursor = cursor
        return result


def replicated_datasets(datasets: Any) -> list[Dataset]:
    return [d for d in datasets if isinstance(d.source, (LegacySoapSource, PlatformSource))
            and d.source.mode == "replicated"]


def chosen_datasets(catalog: Any, names: Sequence[str], every_replicated: bool) -> list[Dataset]:
    """The datasets a sync round covers: the named ones, and with ``every_replicated`` all replicated ones.

    Raises KeyError naming a dataset the catalog does not have."""
    chosen = replicated_datasets(catalog) if every_replicated else []
    for name in names:
        dataset = catalog.get(name)
        if dataset is None:
            raise KeyError(name)
        chosen.append(dataset)
    return chosen


def sync_dataset(dataset: Dataset, store: DatasetStore, pool: ProviderPool, state: SyncState, *, full: bool = False,
                 max_pages: int | None = None,
                 progress: Callable[[int, int | None], None] | None = None,
                 platform: PlatformPool | None = None) -> SyncResult:
    """One dataset's sync: from scratch with ``full``, else from its cursor. ValueError if it cannot be synced."""
    job = SyncJob(dataset, store, pool, state, platform)  # refuses a dataset without a changes feed
    if full:
        state.reset(dataset.dataset)
    return job.run(max_pages=max_pages, progress=progress)
