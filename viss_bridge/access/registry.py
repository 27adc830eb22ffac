"""Clients (consumer identities) and the datasets each may call, as database rows.

This is the first, simple layer of access control: a permission is a row
(client, dataset). The platform's richer permission model (purpose, legal
basis, fields, validity, quota) is layered on these tables later.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Column, DateTime, ForeignKey, Index, MetaData, String, Table, delete, insert, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

metadata = MetaData()

clients = Table(
    "clients",
    metadata,
    Column("client_id", String(255), primary_key=True),  # X-Road id: LV/GOV/CODE[/SUBSYSTEM]
    Column("name", String(255), nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

client_permissions = Table(
    "client_permissions",
    metadata,
    Column("client_id", String(255), ForeignKey("clients.client_id", ondelete="CASCADE"), nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Index("ux_client_permissions", "client_id", "dataset", unique=True),
)


class AccessStoreUnavailable(RuntimeError):
    """The permission tables could not be read."""


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class AccessRegistry:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def add_client(self, client_id: str, name: str = "") -> None:
        """Register a client; registering one that exists updates its name."""
        with self.engine.begin() as conn:
            exists = conn.execute(select(clients.c.client_id).where(clients.c.client_id == client_id)).first()
            if exists:
                conn.execute(clients.update().where(clients.c.client_id == client_id).values(name=name))
            else:
                conn.execute(insert(clients).values(client_id=client_id, name=name, created_at=_now()))

    def grant(self, client_id: str, dataset: str) -> None:
        with self.engine.begin() as conn:
            try:
                with conn.begin_nested():
                    conn.execute(insert(client_permissions).values(client_id=client_id, dataset=dataset,
                                                                   granted_at=_now()))
            except IntegrityError:
                pass

    def revoke(self, client_id: str, dataset: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(client_permissions).where(client_permissions.c.client_id == client_id,
                                                          client_permissions.c.dataset == dataset))

    def clients(self) -> list[Client]:
        with self._reading() as conn:
            rows = conn.execute(select(clients.c.client_id, clients.c.name).order_by(clients.c.client_id)).all()
        return [Client(row.client_id, row.name) for row in rows]

    def client(self, client_id: str) -> Client | None:
        with self._reading() as conn:
            row = conn.execute(select(clients.c.client_id, clients.c.name)
                               .where(clients.c.client_id == client_id)).first()
        return Client(row.client_id, row.name) if row else None

    def allowed_datasets(self, client_id: str) -> set[str]:
        with self._reading() as conn:
            rows = conn.execute(select(client_permissions.c.dataset)
                                .where(client_permissions.c.client_id == client_id)).all()
        return {row.dataset for row in rows}

    def is_allowed(self, client_id: str, dataset: str) -> bool:
        with self._reading() as conn:
            row = conn.execute(select(client_permissions.c.dataset)
                               .where(client_permissions.c.client_id == client_id,
                                      client_permissions.c.dataset == dataset)).first()
        return row is not None

    def _reading(self):  # type: ignore[no-untyped-def]
        return _ReadGuard(self.engine)


class _ReadGuard:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.conn = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        try:
            self.conn = self.engine.connect()
        except SQLAlchemyError as exc:
            raise AccessStoreUnavailable(f"permission store unreachable: {exc.__class__.__name__}") from exc
        return self.conn

    def __exit__(self, exc_type, exc, tb) -> bool:  # type: ignore[no-untyped-def]
        assert self.conn is not None
        self.conn.close()
        if exc is not None and isinstance(exc, SQLAlchemyError):
            raise AccessStoreUnavailable(f"permission store read failed: {exc.__class__.__name__}") from exc
        return False
