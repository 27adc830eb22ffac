"""Database engines: one place that knows how SQLite and PostgreSQL are set up.

SQLite is the embedded default (demo, single node); several worker processes
share it, so it runs in WAL mode with a busy timeout instead of failing on a
lock. PostgreSQL is used for production and for several nodes.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url


def make_engine(url: str, **kwargs: object) -> Engine:
    """Create an engine; for SQLite files, create the folder and tune the connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            # Enough pooled connections for a worker's threads (``worker_threads``, 8 by default) plus the
            # sealer and the reload watcher: past the pool, SQLAlchemy opens and closes an overflow
            # connection (and runs the pragmas below) per checkout, on every request.
            kwargs.setdefault("pool_size", 16)
            kwargs.setdefault("max_overflow", 16)
        engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):  # type: ignore[no-untyped-def]
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        return engine
    kwargs.setdefault("pool_pre_ping", True)
    kwargs.setdefault("pool_size", 5)
    kwargs.setdefault("max_overflow", 10)
    return create_engine(url, **kwargs)


def redacted(url: str) -> str:
    """The URL without its password, for logs and /health."""
    return make_url(url).render_as_string(hide_password=True)


def create_tables(metadata: object, engine: Engine) -> None:
    """``metadata.create_all`` that tolerates another process creating the same tables at the same time.

    Several gunicorn workers start together on a fresh database; the loser of the race gets
    "already exists" (SQLite) or a unique violation on the catalog (PostgreSQL): fine if the tables are there.
    """
    import time

    from sqlalchemy import inspect
    from sqlalchemy.exc import DBAPIError

    attempts = 10
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)  # type: ignore[attr-defined]
            return
        except DBAPIError:
            present = set(inspect(engine).get_table_names())
            if all(table.name in present for table in metadata.sorted_tables):  # type: ignore[attr-defined]
                return
            # The other process is still creating the later tables of the same metadata: once it is done,
            # create_all (which skips existing tables) succeeds or finds them all.
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
