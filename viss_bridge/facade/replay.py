"""The replay table: ids of signed messages already accepted, shared by every worker and node.

One table for every endpoint that accepts signed messages (``scope`` ``viss`` for
``wsa:MessageID`` on ``/viss``, ``xroad`` for the X-Road ``id`` header on ``/xroad``), keyed
per signer: the first worker to insert (scope, client, id) wins and every later insert hits
the primary key, so a replay sent to another worker, or to another node on the same
database, is caught just the same.

An id is kept until the last moment its message could still pass the freshness rule
(:meth:`viss_bridge.security.wssecurity.Freshness.remember_until`), never shorter, so
no replay outlives its entry.
"""

from __future__ import annotations

import datetime as dt
import hashlib

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, insert
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from viss_bridge.db import create_tables

metadata = MetaData()

seen_messages = Table(
    "wss_seen_messages",
    metadata,
    Column("scope", String(16), primary_key=True),
    Column("client", String(255), primary_key=True),
    Column("message_id", String(255), primary_key=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("forget_after", DateTime(timezone=True), nullable=False, index=True),
)

PURGE_EVERY = 100  # inserts between purges of ids no message could still use


class TooLateToRemember(Exception):
    """The message stopped being acceptable between its verification and its recording (a stalled worker)."""


def _key(value: str) -> str:
    """The value, or its SHA-256 when it would not fit the column (ids are the sender's choice)."""
    return value if len(value) <= 200 else "sha256:" + hashlib.sha256(value.encode()).hexdigest()


class ReplayTable:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._inserts = 0

    def create_schema(self) -> None:
        create_tables(metadata, self.engine)

    def first_sighting(self, scope: str, client: str, message_id: str, remember_until: dt.datetime,
                       now: dt.datetime | None = None) -> bool:
        """Record a message id; False if this signer's id is already recorded (a replay).

        ``remember_until`` is the last moment the message could pass the freshness check. If that
        moment has already passed, an earlier copy's entry may have been purged, so the message
        is refused with :class:`TooLateToRemember` rather than recorded.
        """
        now = now or dt.datetime.now(dt.timezone.utc)
        remember_until = remember_until.astimezone(dt.timezone.utc)  # SQLite stores the wall time, so one zone
        if remember_until < now:
            raise TooLateToRemember(f"the message stopped being acceptable at {remember_until.isoformat()}")
        self._inserts += 1
        if self._inserts % PURGE_EVERY == 1:
            self.purge(now)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(seen_messages).values(scope=scope, client=_key(client), message_id=_key(message_id),
                                                          seen_at=now, forget_after=remember_until))
        except IntegrityError:
            return False
        return True

    def purge(self, now: dt.datetime | None = None) -> int:
        """Forget ids whose messages can no longer be accepted; the number forgotten."""
        now = now or dt.datetime.now(dt.timezone.utc)
        with self.engine.begin() as conn:
            return conn.execute(delete(seen_messages).where(seen_messages.c.forget_after < now)).rowcount or 0
