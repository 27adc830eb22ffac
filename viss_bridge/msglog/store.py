"""The log store: plain DB-API connections to SQLite or PostgreSQL, one per thread.

The message log is on the hot path of every request, and its durability
rules differ from the dataset store's, so it talks to the database directly
rather than through the dataset store's SQLAlchemy engine:

- SQLite: WAL with ``synchronous=FULL`` (a commit is on disk before the
  response leaves), appends in ``BEGIN IMMEDIATE`` transactions so the
  worker processes of a node take turns on the one chain;
- PostgreSQL: an ordinary commit (durable with the server's default
  ``synchronous_commit``), appends serialised by a row lock
  (``SELECT ... FOR UPDATE``) on the node's head row, so several worker
  processes, and several nodes, share one database safely.

Any database error becomes :class:`LogUnavailable`; the broken connection is
dropped so the next call reconnects.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy.engine import make_url


class LogUnavailable(Exception):
    """The log store cannot be read or written (the request must not be served)."""


def _schema(blob: str, real: str, bigint: str) -> list[str]:
    return [
        f"""CREATE TABLE IF NOT EXISTS msglog_head (
            node_id TEXT PRIMARY KEY, seq {bigint} NOT NULL, chain_hash {blob} NOT NULL)""",
        f"""CREATE TABLE IF NOT EXISTS msglog_record (
            node_id TEXT NOT NULL, seq {bigint} NOT NULL, recorded_at TEXT NOT NULL, exchange_id TEXT NOT NULL,
            leg TEXT NOT NULL, direction TEXT NOT NULL, endpoint TEXT, dialect TEXT, client TEXT, service TEXT,
            message_id TEXT, user_id TEXT, subjects TEXT, status INTEGER, fault_code TEXT, fault_id TEXT,
            duration_us {bigint}, remote_addr TEXT, body {blob} NOT NULL, record_hash {blob} NOT NULL,
            chain_hash {blob} NOT NULL, PRIMARY KEY (node_id, seq))""",
        "CREATE INDEX IF NOT EXISTS msglog_record_message ON msglog_record (message_id)",
        "CREATE INDEX IF NOT EXISTS msglog_record_exchange ON msglog_record (exchange_id)",
        "CREATE INDEX IF NOT EXISTS msglog_record_client ON msglog_record (client, recorded_at)",
        "CREATE INDEX IF NOT EXISTS msglog_record_time ON msglog_record (recorded_at)",
        f"""CREATE TABLE IF NOT EXISTS msglog_seal (
            node_id TEXT NOT NULL, first_seq {bigint} NOT NULL, last_seq {bigint} NOT NULL, created_at TEXT NOT NULL,
            merkle_root {blob} NOT NULL, chain_head {blob} NOT NULL, seal_xml {blob} NOT NULL, tsr {blob},
            tsa_time TEXT, PRIMARY KEY (node_id, first_seq))""",
        f"""CREATE TABLE IF NOT EXISTS msglog_sealer (
            node_id TEXT PRIMARY KEY, sealed_seq {bigint} NOT NULL, lease_owner TEXT, lease_until {real},
            last_seal_at {real}, tsa_failing_since {real}, tsa_error TEXT)""",
        f"""CREATE TABLE IF NOT EXISTS msglog_archive (
            node_id TEXT NOT NULL, first_seq {bigint} NOT NULL, last_seq {bigint} NOT NULL,
            last_chain_hash {blob} NOT NULL, file TEXT NOT NULL, file_sha256 TEXT NOT NULL, created_at TEXT NOT NULL,
            purged INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (node_id, first_seq))""",
    ]


class LogStore:
    def __init__(self, url: str, read_only: bool = False) -> None:
        """``read_only`` (the security officer's tools): never create, change or lock the log being examined."""
        self.url = url
        self.read_only = read_only
        parsed = make_url(url)
        self.backend = parsed.get_backend_name()
        if self.backend == "sqlite":
            self.path = parsed.database or ":memory:"
            if read_only and self.path != ":memory:" and not self.path.startswith("file:") and parsed.query.get("uri") != "true":
                parsed = parsed.update_query_dict({"mode": "ro", "uri": "true"})
            elif read_only:
                parsed = parsed.update_query_dict({"mode": "ro"})
            self.uri = self.path.startswith("file:") or parsed.query.get("uri") == "true"
            if self.uri:  # sqlite:///file:/path/log.sqlite?mode=ro&uri=true -> an SQLite URI with its options
                from urllib.parse import urlencode

                options = {k: v for k, v in parsed.query.items() if k != "uri"}
                base = self.path if self.path.startswith("file:") else "file:" + self.path
                self.path = base + ("?" + urlencode(options) if options else "")
            if not self.uri and self.path != ":memory:" and not read_only:
                Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        elif self.backend == "postgresql":
            self.conninfo: dict[str, Any] = {k: v for k, v in dict(host=parsed.host, port=parsed.port, user=parsed.username,
                                                   password=parsed.password, dbname=parsed.database).items() if v}
        else:
            raise ValueError(f"the message log supports SQLite and PostgreSQL, not {self.backend}")
        self._local = threading.local()
        self._schema_ready = False

    @property
    def is_pg(self) -> bool:
        return self.backend == "postgresql"

    # -- connections -----------------------------------------------------------------

    def _connect(self) -> Any:
        if self.is_pg:
            import psycopg

            options: dict[str, Any] = {"options": "-c default_transaction_read_only=on"} if self.read_only else {}
            return psycopg.connect(connect_timeout=5, **self.conninfo, **options)
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False, uri=self.uri)
        conn.execute("PRAGMA busy_timeout=30000")
        try:
            conn.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:
            pass  # a read-only database cannot switch modes; writes will fail later, loudly
        conn.execute("PRAGMA synchronous=FULL")
        return conn

    def connection(self) -> Any:
        conn = getattr(self._local, "conn", None)
        now = time.monotonic()
        if conn is not None and self.is_pg and now - getattr(self._local, "used", now) > 1.0:
            # An idle PostgreSQL connection may have died (server restart, failover): check before use, so a
            # recovered database serves the next request instead of failing it on a stale connection.
            try:
                conn.execute("SELECT 1")
                conn.rollback()
            except Exception:
                self.drop_connection()
                conn = None
        self._local.used = now
        if conn is None:
            try:
                conn = self._connect()
            except Exception as exc:
                raise LogUnavailable(f"cannot connect to the log store: {exc}") from exc
            self._local.conn = conn
        return conn

    def drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        self._local.conn = None
        if conn is not None:
            try:
                conn.close()
            except Exception:
                pass

    def close(self) -> None:
        self.drop_connection()
        fd = getattr(self._local, "lock_fd", None)
        if fd is not None:
            os.close(fd)
            self._local.lock_fd = None

    def sql(self, statement: str) -> str:
        return statement.replace("?", "%s") if self.is_pg else statement

    def _writer_lock(self) -> Any:
        """SQLite: a lock file that queues the node's writers (all processes) in the kernel.

        SQLite's own busy handler makes a waiting writer sleep 1, 2, 5, 10, ... 100 ms between retries, so
        under load most of a request's time would be spent asleep while the lock is free. ``flock`` wakes
        the next writer the moment the lock is released, and the kernel drops it if its holder is killed.
        """
        if self.is_pg or self.path == ":memory:" or "mode=ro" in self.path:
            return None
        fd = getattr(self._local, "lock_fd", None)
        if fd is None:
            path = self.path[len("file:"):].split("?", 1)[0] if self.uri else self.path
            fd = os.open(path + ".writer-lock", os.O_RDWR | os.O_CREAT, 0o600)
            self._local.lock_fd = fd
        return fd

    @contextmanager
    def transaction(self, write: bool = True) -> Iterator[Any]:
        """A cursor in one transaction (SQLite: BEGIN IMMEDIATE when writing); errors -> LogUnavailable."""
        lock = self._writer_lock() if write else None
        if lock is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            with self._transaction(write) as cur:
                yield cur
        finally:
            if lock is not None:
                fcntl.flock(lock, fcntl.LOCK_UN)

    @contextmanager
    def _transaction(self, write: bool) -> Iterator[Any]:
        conn = self.connection()
        try:
            cur = conn.cursor()
            if not self.is_pg:
                cur.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            yield cur
            conn.commit() if self.is_pg else cur.execute("COMMIT")
        except LogUnavailable:
            self._rollback(conn)
            raise
        except Exception as exc:
            self._rollback(conn)
            self.drop_connection()
            raise LogUnavailable(f"log store error: {exc}") from exc

    def _rollback(self, conn: Any) -> None:
        try:
            if self.is_pg:
                conn.rollback()
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        except Exception:
            pass

    def query(self, statement: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self.transaction(write=False) as cur:
            cur.execute(self.sql(statement), params)
            return list(cur.fetchall())

    def stream(self, statement: str, params: tuple[Any, ...] = (), batch: int = 5000) -> Iterator[tuple[Any, ...]]:
        """Rows of a big query without holding them all (a separate connection; server-side cursor on PG)."""
        conn = self._connect()
        try:
            if self.is_pg:
                with conn.cursor(name="msglog_stream") as cur:
                    cur.itersize = batch
                    cur.execute(self.sql(statement), params)
                    yield from cur
                conn.rollback()
            else:
                cur = conn.execute(statement, params)
                while True:
                    rows = cur.fetchmany(batch)
                    if not rows:
                        break
                    yield from rows
        finally:
            conn.close()

    # -- schema --------------------------------------------------------------------------

    def create_schema(self, node_id: str) -> None:
        if self._schema_ready:
            return
        statements = _schema("BYTEA", "DOUBLE PRECISION", "BIGINT") if self.is_pg else _schema("BLOB", "REAL", "INTEGER")
        for attempt in range(5):
            try:
                with self.transaction() as cur:
                    if self.is_pg:  # several workers start at once: one creates, the others wait
                        cur.execute("SELECT pg_advisory_xact_lock(4242001)")
                    for statement in statements:
                        cur.execute(statement)
                break
            except LogUnavailable:
                if attempt == 4:
                    raise
        self.ensure_node(node_id)
        self._schema_ready = True

    def ensure_node(self, node_id: str) -> None:
        with self.transaction() as cur:
            cur.execute(self.sql("INSERT INTO msglog_head (node_id, seq, chain_hash) VALUES (?, 0, ?) "
                                 "ON CONFLICT (node_id) DO NOTHING"), (node_id, bytes(32)))
            cur.execute(self.sql("INSERT INTO msglog_sealer (node_id, sealed_seq, last_seal_at) VALUES (?, 0, 0) "
                                 "ON CONFLICT (node_id) DO NOTHING"), (node_id,))

    def nodes(self) -> list[str]:
        return [row[0] for row in self.query("SELECT node_id FROM msglog_head ORDER BY node_id")]
