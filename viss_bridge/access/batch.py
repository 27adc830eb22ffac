"""The per-answer access writes of one process, group committed: one transaction for all that wait.

Every answer under a permission reserves a use before it is logged and, once its log records have
committed, writes its data-tracker entries (or gives the use back when it was not served). Done one
transaction per write, every answer paid two commits on the access store and, on SQLite, queued for
its writer lock in SQLite's sleeping busy handler (1, 2, 5 ... 100 ms naps while the lock is free).

Here concurrent writes of a worker's threads go through :class:`viss_bridge.grouping.GroupCommit`:
the leader takes the database's writer lock (SQLite: a ``flock`` on ``<database>.writer-lock``, the
same lock file the message log uses for a database file, which the kernel hands to the next waiter
at once; PostgreSQL: the permission row's lock, taken by the UPDATE), applies every waiting write
with :func:`~viss_bridge.access.registry.apply_use_writes` and commits once. Each caller returns only
after the transaction holding its write committed.

What stays exact:

- **quotas**: a reservation is the conditional ``UPDATE ... WHERE used + k <= quota`` inside the
  transaction, under the row's write lock, so however many workers and nodes count at once no
  permission is used beyond its quota; within a batch, reserves that do not all fit are taken one at
  a time, so exactly as many succeed as the quota holds and each of the rest gets ``UseRefused``;
- **revocation, expiry**: the same UPDATE checks status and validity, so a revoke committed before
  a reservation's transaction refuses it, whatever a worker's permission cache says;
- **nothing spent for an answer not given**: the use is reserved before the answer is logged and
  given back (``release``) when the log refused it; tracker entries are written only after the log
  committed (``access.policy.PendingUse``).

If the batch's transaction fails, every write in it fails with :class:`AccessStoreUnavailable`
(answers fault with ``DatabaseError``; a failed tracker write after the log committed is reported
by ``facade.exchange.settle_uses``).
"""

from __future__ import annotations

import fcntl
import os
import threading
from types import SimpleNamespace
from typing import Any, Callable

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from sqlalchemy import bindparam, or_, select

from viss_bridge.access.registry import (_ROW, RELEASE, RESERVE, TRACK, AccessStoreUnavailable, Permission,
                                         UsageRow, UseRefused, UseWrite, _permission, apply_use_writes, now_utc)
from viss_bridge.access.tables import permissions, usage_entries
from viss_bridge.catalog.sqlreads import DirectReads, direct_reads
from viss_bridge.grouping import GroupCommit


# Usable now (state, validity), and its quota: the check before an answer under an unlimited permission.
_USABLE_SQL = (f"SELECT quota FROM {permissions.name} WHERE number = ? AND status = 'active' AND valid_from <= ? "
               "AND (valid_to IS NULL OR valid_to > ?)")
_USABLE = (select(permissions.c.quota)
           .where(permissions.c.number == bindparam("n"), permissions.c.status == "active",
                  permissions.c.valid_from <= bindparam("at"),
                  or_(permissions.c.valid_to.is_(None), permissions.c.valid_to > bindparam("at"))))


_P = permissions.name
_GIVE_BACK_SQL = f"UPDATE {_P} SET used = CASE WHEN used > ? THEN used - ? ELSE 0 END WHERE number = ? AND used > 0"
_TAKE_SQL = (f"UPDATE {_P} SET used = used + ? WHERE number = ? AND status = 'active' AND valid_from <= ? "
             "AND (valid_to IS NULL OR valid_to > ?) AND (quota IS NULL OR used + ? <= quota)")
_ROW_SQL = f"SELECT {', '.join(c.name for c in permissions.c)} FROM {_P} WHERE number = ?"
_COUNT_SQL = f"UPDATE {_P} SET used = used + ? WHERE number = ?"
_ENTRY_COLUMNS = ("at", "person", "client_id", "dataset", "purpose", "permission_number", "user_id", "message_id")
_ENTRIES_PER_INSERT = 500  # 4,000 parameters per statement, far below SQLite's and PostgreSQL's limits


def _insert_entries_sql(rows: int) -> str:
    one = "(" + ", ".join("?" * len(_ENTRY_COLUMNS)) + ")"
    return f"INSERT INTO {usage_entries.name} ({', '.join(_ENTRY_COLUMNS)}) VALUES " + ", ".join([one] * rows)


class _PlainStatements:
    """The per-answer statements (:class:`~viss_bridge.access.registry.UseStatements`) as plain SQL on a
    DB-API cursor inside :meth:`DirectReads.transaction`; the same SQL as the Core statements in registry."""

    def __init__(self, cursor: Any, direct: DirectReads, engine: Engine, sql_time: Callable[[Any], Any]) -> None:
        self.cursor, self.direct, self.engine, self.sql_time = cursor, direct, engine, sql_time

    def _run(self, statement: str, params: tuple[Any, ...]) -> int:
        self.cursor.execute(self.direct.sql(statement), params)
        return int(self.cursor.rowcount)

    def give_back(self, number: str, k: int) -> None:
        self._run(_GIVE_BACK_SQL, (k, k, number))

    def take(self, number: str, at: Any, k: int) -> bool:
        moment = self.sql_time(at)
        return self._run(_TAKE_SQL, (k, number, moment, moment, k)) == 1

    def row(self, number: str) -> Permission | None:
        """The permission as this transaction sees it (only read on a refusal, to say why), its values
        converted by SQLAlchemy's own result processors for the dialect (SQLite keeps timestamps as text)."""
        self._run(_ROW_SQL, (number,))
        found = self.cursor.fetchone()
        if found is None:
            return None
        values = {}
        dialect = self.engine.dialect
        for column, value in zip(permissions.c, found):
            process = column.type.dialect_impl(dialect).result_processor(dialect, None)
            values[column.name] = process(value) if process is not None and value is not None else value
        return _permission(SimpleNamespace(**values))

    def count(self, number: str, k: int) -> None:
        self._run(_COUNT_SQL, (k, number))

    def insert_entries(self, rows: list[dict[str, Any]]) -> None:
        for start in range(0, len(rows), _ENTRIES_PER_INSERT):
            chunk = rows[start:start + _ENTRIES_PER_INSERT]
            params: list[Any] = []
            for entry in chunk:
                params.extend(self.sql_time(entry[c]) if c == "at" else entry[c] for c in _ENTRY_COLUMNS)
            self._run(_insert_entries_sql(len(chunk)), tuple(params))


def _sql_time(engine: Engine) -> Callable[[Any], Any]:
    """How a moment must reach the driver to compare with stored timestamps (SQLite: SQLAlchemy's text form);
    looked up once per engine, not per statement."""
    process = permissions.c.valid_from.type.bind_processor(engine.dialect)
    return process if process is not None else (lambda moment: moment)


def writer_lock_path(engine: Engine) -> str | None:
    """The lock file that queues writers of an SQLite database file (None for PostgreSQL or memory)."""
    url = engine.url
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database + ".writer-lock"


class AccessWrites:
    """Reserve, give back and track, group committed per process (see the module docstring)."""

    def __init__(self, engine: Engine, max_batch: int = 256) -> None:
        self.engine = engine
        self._lock_path = writer_lock_path(engine)
        self.direct = direct_reads(engine)
        self._sql_time = _sql_time(engine)
        self._local = threading.local()
        self._group: GroupCommit[UseWrite, UseRefused | None] = GroupCommit(
            self._write, max_batch=max_batch, failure=AccessStoreUnavailable)
        self.commits = 0  # transactions this process committed, and the writes they held (tests, benchmarks)
        self.writes = 0
        self._stats = threading.Lock()

    def unlimited(self, number: str) -> bool:
        """Is permission ``number`` usable now and without quota? Raises UseRefused if it is not usable.

        One read (no write lock): for a permission without quota nothing needs reserving, its use is
        counted with the answer's tracker entries once served (``track(..., count=number)``), so an
        answer that is not served counts nothing. The read checks state and validity in the database,
        like the reservation's UPDATE, so a revocation committed before it refuses the call. False:
        the permission has a quota, and the caller reserves the use exactly (:meth:`reserve`).
        """
        at = self._sql_time(now_utc())
        try:
            if self.direct.enabled:
                rows = self.direct.rows(_USABLE_SQL, (number, at, at))
            else:
                with self.engine.connect() as conn:
                    rows = [tuple(r) for r in conn.execute(_USABLE, {"n": number, "at": now_utc()}).all()]
        except Exception as exc:  # SQLAlchemy's or the driver's own error types
            raise AccessStoreUnavailable(f"permission store read failed: {exc.__class__.__name__}") from exc
        if rows:
            return rows[0][0] is None
        try:
            with self.engine.connect() as conn:
                row = conn.execute(_ROW, {"n": number}).first()
        except SQLAlchemyError as exc:
            raise AccessStoreUnavailable(f"permission store read failed: {exc.__class__.__name__}") from exc
        permission = _permission(row) if row else None
        raise UseRefused(permission, permission.refusal() if permission else f"permission {number} no longer exists")

    def reserve(self, number: str) -> None:
        """Take one use of permission ``number`` (raises UseRefused, or AccessStoreUnavailable)."""
        self._submit(UseWrite(RESERVE, number))

    def release(self, number: str) -> None:
        """Give back a use whose answer was not served."""
        self._submit(UseWrite(RELEASE, number))

    def track(self, rows: list[UsageRow], count: str | None = None) -> None:
        """Write the tracker entries of an answer whose log records have committed (and count one use of the
        unlimited permission ``count``)."""
        if rows or count is not None:
            self._submit(UseWrite(TRACK, number=count, rows=tuple(rows), count=count is not None))

    def track_many(self, answers: list[tuple[list[UsageRow], str | None]]) -> None:
        """:meth:`track` for several answers at once, in one transaction of the calling thread.

        For a caller that batches already (the message log's committing thread settles every answer of
        its commit: ``access.policy.commit_uses``): no second rendezvous of the answers' threads."""
        writes = [UseWrite(TRACK, number=count, rows=tuple(rows), count=count is not None)
                  for rows, count in answers if rows or count is not None]
        if writes:
            self._write(lambda: writes)

    def _submit(self, write: UseWrite) -> None:
        refused = self._group.submit(write)
        if refused is not None:
            raise refused

    def _fd(self) -> int | None:
        if self._lock_path is None:
            return None
        fd: int | None = getattr(self._local, "fd", None)
        if fd is None:  # one open file per thread: flock excludes other open files, in this process too
            fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._local.fd = fd
        return fd

    def _write(self, take: Callable[[], list[UseWrite]]) -> list[UseRefused | None]:
        fd = self._fd()
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if self.direct.enabled:
                with self.direct.transaction() as cursor:
                    batch = take()  # everyone who queued while this leader waited for the lock rides along
                    results = apply_use_writes(_PlainStatements(cursor, self.direct, self.engine, self._sql_time), batch)
            else:
                with self.engine.begin() as conn:
                    batch = take()
                    results = apply_use_writes(conn, batch)
        except AccessStoreUnavailable:
            raise
        except Exception as exc:  # SQLAlchemy's or the driver's own error types
            raise AccessStoreUnavailable(f"permission store write failed: {exc.__class__.__name__}") from exc
        finally:
            if fd is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        with self._stats:
            self.commits += 1
            self.writes += len(batch)
        return results

    def stats(self) -> dict[str, Any]:
        with self._stats:
            return {"commits": self.commits, "writes": self.writes}
