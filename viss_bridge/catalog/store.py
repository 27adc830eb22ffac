"""The dataset store: every dataset's records in SQL, looked up by key, paged by change.

One table holds all datasets (a record is JSON keyed by dataset and canonical
key) so that adding a manifest needs no migration: that is what "configured,
not developed" means for storage. A change re-inserts the row, so the
autoincrement ``seq`` doubles as a change feed cursor; deletions leave a
tombstone the feed can report.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator

from sqlalchemy import (BigInteger, Boolean, Column, DateTime, Index, Integer, MetaData, String, Table, Text,
                        bindparam, delete, func, insert, select)
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from viss_bridge.catalog import search_index
from viss_bridge.catalog.manifest import Dataset
from viss_bridge.catalog.search import SearchPage, SearchRequest
from viss_bridge.catalog.sqlreads import direct_reads
from viss_bridge.catalog.values import compose_key, record_to_python, to_json

metadata = MetaData()

records = Table(
    "dataset_records",
    metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("dataset", String(64), nullable=False),
    Column("record_key", String(512), nullable=False),
    Column("data", Text, nullable=True),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Index("ux_dataset_records_key", "dataset", "record_key", unique=True),
    Index("ix_dataset_records_seq", "dataset", "seq"),
    sqlite_autoincrement=True,
)


# The lookup by key: plain SQL on the thread's own connection (catalog.sqlreads), or, for in-memory SQLite,
# a statement built once (its compiled form and cache key reused; building it per call cost more than
# SQLite's own work for it).
_BY_KEY_SQL = f"SELECT data FROM {records.name} WHERE dataset = ? AND record_key = ? AND deleted = ?"
_BY_KEY = select(records.c.data).where(records.c.dataset == bindparam("dataset"), records.c.record_key == bindparam("key"),
                                       records.c.deleted.is_(False))


class StoreUnavailable(RuntimeError):
    """The database could not be reached or answered with an error."""


@dataclass(frozen=True)
class Change:
    seq: int
    key: str
    changed_at: dt.datetime
    record: dict[str, Any] | None  # None: the record was deleted


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _aware(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


class DatasetStore:
    """Reads and writes dataset records. Safe to share across threads."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.direct = direct_reads(engine)  # the lookup by key, on every answer

    def create_schema(self) -> None:
        metadata.create_all(self.engine)
        search_index.index_metadata.create_all(self.engine)

    def _guard(self, action: str):  # type: ignore[no-untyped-def]
        return _Guard(action)

    # -- reads ---------------------------------------------------------------

    def get(self, dataset: Dataset, key_values: dict[str, Any]) -> dict[str, Any] | None:
        """The record with this key as Python values, or None. Raises ValueProblem for a bad key."""
        key = compose_key(dataset.key_fields, key_values)
        if self.direct.enabled:
            try:
                rows = self.direct.rows(_BY_KEY_SQL, (dataset.dataset, key, False))
            except Exception as exc:  # the driver's own error types: sqlite3, psycopg
                raise StoreUnavailable(f"dataset store read failed: {exc.__class__.__name__}: "
                                       f"{str(exc).splitlines()[0][:200] if str(exc) else ''}") from exc
            data = rows[0][0] if rows else None
        else:
            with self._guard("read"), self.engine.connect() as conn:
                row = conn.execute(_BY_KEY, {"dataset": dataset.dataset, "key": key}).first()
            data = row.data if row is not None else None
        if data is None:
            return None
        return record_to_python(dataset.fields, json.loads(data))

    def search(self, dataset: Dataset, request: SearchRequest, exclude_subjects: Any = None) -> SearchPage:
        """Records matching every criterion (index paths or the key), one page in record-key order, and the total.

        ``exclude_subjects``: persons (subject keys, see ``search.subject_key``) whose records are left out
        of the page and the total; a SQL select of them (the restriction register's), or a collection.
        Raises ``search.SearchProblem`` for a criterion that is not indexed, a bad value or cursor.
        """
        page_query, total_query, params = search_index.search_statement(dataset, records, request, exclude_subjects)
        with self._guard("read"), self.engine.connect() as conn:
            rows = conn.execute(page_query, params).all()  # the page and the total in one statement
            total = int(rows[0].total) if rows else int(conn.execute(total_query, params).scalar_one())
        found = [record_to_python(dataset.fields, json.loads(row.data)) for row in rows[:request.page_size]]
        return SearchPage(records=found, total=total, page=request.page if request.cursor is None else None,
                          next_cursor=search_index.next_cursor([row.record_key for row in rows], request.page_size))

    def ensure_indexes(self, datasets: Iterable[Dataset]) -> list[str]:
        """Rebuild the search entries of every dataset whose index definition changed; the names rebuilt.

        One query reads every stored fingerprint, so a catalog whose indexes did not change costs
        nothing more at start-up or reload; a dataset whose ``indexes:`` changed is rebuilt from its
        records (docs/manifests.md). Concurrent workers may both try: the loser's rebuild is dropped.
        """
        with self._guard("read"), self.engine.connect() as conn:
            stored = search_index.stored_fingerprints(conn)
        rebuilt = []
        for dataset in datasets:
            if search_index.needs_rebuild(dataset, stored.get(dataset.dataset)):
                if self.reindex(dataset, if_changed=True) is not None:
                    rebuilt.append(dataset.dataset)
        return rebuilt

    def reindex(self, dataset: Dataset, if_changed: bool = False) -> int | None:
        """Rebuild one dataset's search entries from its records now; returns how many entries it has.

        ``if_changed``: only if the stored definition still differs (another worker may have just
        rebuilt it); None when there was nothing to do.
        """
        from sqlalchemy.exc import IntegrityError

        try:
            with self._guard("write"), self.engine.begin() as conn:
                if if_changed and not search_index.needs_rebuild(
                        dataset, search_index.stored_fingerprint(conn, dataset.dataset)):
                    return None
                return search_index.rebuild(conn, dataset, records)
        except StoreUnavailable as exc:
            if isinstance(exc.__cause__, IntegrityError):  # another worker rebuilt it at the same moment
                return 0
            raise

    def changes(self, dataset: Dataset, since: int = 0, limit: int = 100) -> list[Change]:
        """Records changed after cursor ``since``, oldest first; the last seq is the next cursor."""
        with self._guard("read"), self.engine.connect() as conn:
            rows = conn.execute(
                select(records.c.seq, records.c.record_key, records.c.data, records.c.changed_at, records.c.deleted)
                .where(records.c.dataset == dataset.dataset, records.c.seq > since)
                .order_by(records.c.seq).limit(limit)
            ).all()
        return [Change(seq=row.seq, key=row.record_key, changed_at=_aware(row.changed_at),
                       record=None if row.deleted else record_to_python(dataset.fields, json.loads(row.data)))
                for row in rows]

    def changed_after(self, dataset: Dataset, since: dt.datetime, after_key: str | None = None,
                      limit: int = 100) -> list[Change]:
        """Live records changed after (since, after_key), ordered by (change time, key): keyset paging by time.

        For contracts that page changes by time (generation-II "changed since" operations). ``after_key``
        is a canonical key (see :func:`compose_key`); deleted records are not reported.
        """
        since = _aware(since).astimezone(dt.timezone.utc)
        condition = records.c.changed_at > since
        if after_key is not None:
            condition = condition | ((records.c.changed_at == since) & (records.c.record_key > after_key))
        with self._guard("read"), self.engine.connect() as conn:
            rows = conn.execute(
                select(records.c.seq, records.c.record_key, records.c.data, records.c.changed_at)
                .where(records.c.dataset == dataset.dataset, records.c.deleted.is_(False), condition)
                .order_by(records.c.changed_at, records.c.record_key).limit(limit)
            ).all()
        return [Change(seq=row.seq, key=row.record_key, changed_at=_aware(row.changed_at),
                       record=record_to_python(dataset.fields, json.loads(row.data))) for row in rows]

    def count(self, dataset: Dataset | str) -> int:
        name = dataset if isinstance(dataset, str) else dataset.dataset
        with self._guard("read"), self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(records)
                                    .where(records.c.dataset == name, records.c.deleted.is_(False))).scalar_one())

    def counts(self) -> dict[str, int]:
        with self._guard("read"), self.engine.connect() as conn:
            rows = conn.execute(select(records.c.dataset, func.count()).where(records.c.deleted.is_(False))
                                .group_by(records.c.dataset)).all()
        return {row[0]: int(row[1]) for row in rows}

    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers a query."""
        with self._guard("ping"), self.engine.connect() as conn:
            conn.execute(select(func.count()).select_from(records).where(records.c.seq < 0)).scalar_one()

    # -- writes --------------------------------------------------------------

    def upsert(self, dataset: Dataset, items: Iterable[dict[str, Any]],
               also: Callable[[Connection], None] | None = None) -> int:
        """Insert or replace records (each change gets a new seq). Returns how many were written.

        All records of one call commit together: a reader never sees half a batch. ``also`` runs in
        the same transaction (a sync job moves its cursor there, so records and cursor commit together).
        """
        written: list[tuple[str, dict[str, Any]]] = []
        rows = list(self._rows(dataset, items, written))
        if not rows:
            if also is not None:
                with self._guard("write"), self.engine.begin() as conn:
                    also(conn)
            return 0
        if self.engine.dialect.name == "postgresql":
            # Concurrent writers of the same key: ON CONFLICT moves the row to a fresh seq
            # atomically, where delete-then-insert would race into a unique violation.
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            statement = pg_insert(records)
            statement = statement.on_conflict_do_update(
                index_elements=[records.c.dataset, records.c.record_key],
                set_={"seq": statement.excluded.seq, "data": statement.excluded.data,
                      "changed_at": statement.excluded.changed_at, "deleted": statement.excluded.deleted})
            rows.sort(key=lambda row: row["record_key"])  # a stable lock order avoids deadlocks
            with self._guard("write"), self.engine.begin() as conn:
                conn.execute(statement, rows)  # first: it locks the rows, so their entries change in turn
                search_index.after_write(conn, dataset, records, written, replaced=False)
                if also is not None:
                    also(conn)
            return len(rows)
        # SQLite serialises writers, so replacing rows inside one transaction is safe there.
        with self._guard("write"), self.engine.begin() as conn:
            keys = [row["record_key"] for row in rows]
            for start in range(0, len(keys), 500):
                conn.execute(delete(records).where(records.c.dataset == dataset.dataset,
                                                   records.c.record_key.in_(keys[start:start + 500])))
            conn.execute(insert(records), rows)
            search_index.after_write(conn, dataset, records, written, replaced=False)
            if also is not None:
                also(conn)
        return len(rows)

    def delete(self, dataset: Dataset, key_values: dict[str, Any]) -> bool:
        """Delete a record, leaving a tombstone for the change feed."""
        key = compose_key(dataset.key_fields, key_values)
        with self._guard("write"), self.engine.begin() as conn:
            gone = conn.execute(delete(records).where(records.c.dataset == dataset.dataset,
                                                      records.c.record_key == key)).rowcount
            conn.execute(insert(records), [{"dataset": dataset.dataset, "record_key": key, "data": None,
                                            "changed_at": _now(), "deleted": True}])
            search_index.drop_entries(conn, dataset, [key])
        return bool(gone)

    def replace_all(self, dataset: Dataset, items: Iterable[dict[str, Any]], batch: int = 5000) -> int:
        """Load a dataset from scratch (demo and bulk loads): drop its rows, insert in batches.

        Runs in one transaction, so readers keep the old contents until it commits.
        """
        total = 0
        with self._guard("write"), self.engine.begin() as conn:
            conn.execute(delete(records).where(records.c.dataset == dataset.dataset))
            search_index.after_write(conn, dataset, records, [], replaced=True)  # drops the old entries
            chunk: list[dict[str, Any]] = []
            written: list[tuple[str, dict[str, Any]]] = []
            for row in self._rows(dataset, items, written):
                chunk.append(row)
                if len(chunk) >= batch:
                    conn.execute(insert(records), chunk)
                    search_index.write_entries(conn, [entry for key, record in written
                                                      for entry in search_index.entry_rows(dataset, key, record)])
                    total += len(chunk)
                    chunk = []
                    written.clear()  # the generator appends to this very list
            if chunk:
                conn.execute(insert(records), chunk)
                search_index.write_entries(conn, [entry for key, record in written
                                                  for entry in search_index.entry_rows(dataset, key, record)])
                total += len(chunk)
        return total

    def _rows(self, dataset: Dataset, items: Iterable[dict[str, Any]],
              written: list[tuple[str, dict[str, Any]]] | None = None) -> Iterator[dict[str, Any]]:
        """Records as table rows; ``written`` collects (key, record) of each for its search entries."""
        now = _now()
        for item in items:
            value = record_to_python(dataset.fields, item)
            key = compose_key(dataset.key_fields, value)
            if written is not None:
                written.append((key, value))
            yield {"dataset": dataset.dataset, "record_key": key,
                   "data": json.dumps(to_json(value), ensure_ascii=False, separators=(",", ":")),
                   "changed_at": now, "deleted": False}


class _Guard:
    """Turns driver errors into StoreUnavailable so callers answer with one clear fault."""

    def __init__(self, action: str) -> None:
        self.action = action

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        if exc is not None and isinstance(exc, SQLAlchemyError):
            raise StoreUnavailable(f"dataset store {self.action} failed: {exc.__class__.__name__}: "
                                   f"{str(exc).splitlines()[0][:200]}") from exc
