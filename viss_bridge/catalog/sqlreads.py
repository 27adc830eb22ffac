"""Hot-path reads (and the per-answer writes) on each thread's own DB-API connection, without SQLAlchemy.

Why: every answer reads its record by key and asks whether its data subject restricted the
register. Each is one indexed probe that SQLite or PostgreSQL answers in tens of microseconds, but
through SQLAlchemy Core each also paid a pool checkout and return, an execution context and result
wrapping, several times the database's own work (benchmarks/RESULTS.md, issue 12). Here each thread
keeps one connection taken from the engine's pool and detached from it (so it no longer counts
against the pool's size; the pool's ``connect`` hooks, e.g. the SQLite pragmas, have run on it), and
runs plain SQL on it.

- SQLite: WAL readers outside a transaction see the latest commit; PostgreSQL: the connection is in
  autocommit, so a read is its own transaction and never holds a snapshot or a lock.
- A failed read drops the connection and is tried once more on a fresh one (a read is idempotent),
  so a database that restarted answers the next request; if it fails again the error propagates
  and the caller turns it into its "store unavailable" fault.
- The access store's per-answer writes (``access.batch``) run in :meth:`DirectReads.transaction` on the
  same connection: one explicit transaction (SQLite ``BEGIN IMMEDIATE``), never retried (a write is not
  idempotent), the connection dropped after a failure.
- In-memory SQLite (one database per connection) is not supported: :attr:`DirectReads.enabled` is
  False and callers use their SQLAlchemy path.
"""

from __future__ import annotations

import threading
import weakref
from contextlib import contextmanager
from typing import Any, Iterator, Sequence

from sqlalchemy.engine import Engine

_shared: "weakref.WeakKeyDictionary[Engine, DirectReads]" = weakref.WeakKeyDictionary()
_shared_lock = threading.Lock()


def direct_reads(engine: Engine) -> "DirectReads":
    """The one :class:`DirectReads` of ``engine``, so a thread holds one connection per engine, not one per
    user (the store, the tracker and the access writes share it; PostgreSQL counts every connection)."""
    with _shared_lock:
        reads = _shared.get(engine)
        if reads is None:
            reads = _shared[engine] = DirectReads(engine)
        return reads


class DirectReads:
    """Plain-SQL reads for one engine; statements use ``?`` placeholders on every backend."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        backend = engine.dialect.name
        database = engine.url.database or ""
        self.pg = backend == "postgresql"
        self.enabled = self.pg or (backend == "sqlite" and database not in ("", ":memory:")
                                   and not database.startswith("file:"))
        self._local = threading.local()
        self._sql: dict[str, str] = {}

    def sql(self, statement: str) -> str:
        """``statement`` in the driver's placeholder style (``?`` for sqlite3, ``%s`` for psycopg)."""
        text = self._sql.get(statement)
        if text is None:
            text = self._sql[statement] = statement.replace("?", "%s") if self.pg else statement
        return text

    def rows(self, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """All rows of ``statement``; raises the driver's error if it fails on a fresh connection too."""
        text = self.sql(statement)
        for attempt in (1, 2):
            conn = self._connection()
            try:
                cursor = conn.cursor()
                try:
                    cursor.execute(text, tuple(params))
                    return list(cursor.fetchall())
                finally:
                    cursor.close()
            except Exception:
                self._drop()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """A cursor in one write transaction on this thread's connection, committed when the block ends.

        SQLite: ``BEGIN IMMEDIATE`` takes the writer lock at once (the caller may hold the lock file that
        queues writers already); PostgreSQL: ``BEGIN`` on the autocommit connection. If anything fails the
        transaction is rolled back, the connection dropped and the error raised (the caller's to report).
        """
        conn = self._connection()
        cursor = conn.cursor()
        try:
            cursor.execute("BEGIN" if self.pg else "BEGIN IMMEDIATE")
            yield cursor
            cursor.execute("COMMIT")
        except BaseException:
            try:
                cursor.execute("ROLLBACK")
            except Exception:
                pass  # the connection is dropped below either way
            self._drop()
            raise
        finally:
            try:
                cursor.close()
            except Exception:
                pass

    def _connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            fairy = self.engine.raw_connection()
            fairy.detach()  # this thread's own from now on; the pool may open another for others
            conn = fairy.dbapi_connection
            assert conn is not None  # a fresh checkout always holds a connection
            if self.pg:
                conn.autocommit = True
            self._local.fairy, self._local.conn = fairy, conn
        return conn

    def _drop(self) -> None:
        fairy = getattr(self._local, "fairy", None)
        self._local.fairy = self._local.conn = None
        if fairy is not None:
            try:
                fairy.close()  # detached: closes the DB-API connection itself
            except Exception:
                pass
