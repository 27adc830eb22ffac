"""State the VISS endpoint shares across gunicorn workers and nodes: seen message ids, transactions.

Both live in the bridge's database, so a replay sent to another worker (or
node) is caught just the same: the first worker to insert a MessageID wins,
every later insert hits the primary key.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

metadata = MetaData()

seen_messages = Table(
    "viss_seen_messages",
    metadata,
    Column("message_id", String(255), primary_key=True),
    Column("sender", String(255), nullable=True),
    Column("seen_at", DateTime(timezone=True), nullable=False),
    Column("forget_after", DateTime(timezone=True), nullable=False, index=True),
)

transactions = Table(
    "viss_transactions",
    metadata,
    Column("transaction_id", String(255), primary_key=True),
    Column("sender", String(255), nullable=False),
    Column("destination", String(255), nullable=True),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True), nullable=True),
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class VissState:
    def __init__(self, engine: Engine, window_seconds: int) -> None:
        self.engine = engine
        self.window = dt.timedelta(seconds=window_seconds)
        self._inserts = 0

    def create_schema(self) -> None:
        metadata.create_all(self.engine)

    def first_sighting(self, message_id: str, sender: str | None) -> bool:
        """Record a MessageID; False if it was already seen within the freshness window (a replay)."""
        now = _now()
        self._inserts += 1
        with self.engine.begin() as conn:
            if self._inserts % 100 == 1:  # forget ids older than any message that could still be fresh
                conn.execute(delete(seen_messages).where(seen_messages.c.forget_after < now))
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(seen_messages).values(message_id=message_id, sender=sender, seen_at=now,
                                                          forget_after=now + 2 * self.window))
        except IntegrityError:
            return False
        return True

    def start(self, sender: str, destination: str | None) -> str:
        transaction_id = f"URN:IVIS:TX:{uuid.uuid4()}"
        with self.engine.begin() as conn:
            conn.execute(insert(transactions).values(transaction_id=transaction_id, sender=sender,
                                                     destination=destination, started_at=_now()))
        return transaction_id

    def is_open(self, transaction_id: str, sender: str) -> bool:
        with self.engine.connect() as conn:
            row = conn.execute(select(transactions).where(transactions.c.transaction_id == transaction_id)).first()
        return row is not None and row.sender == sender and row.ended_at is None

    def end(self, transaction_id: str, sender: str) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(update(transactions).where(transactions.c.transaction_id == transaction_id,
                                                           transactions.c.sender == sender,
                                                           transactions.c.ended_at.is_(None))
                                .values(ended_at=_now())).rowcount
        return bool(done)
