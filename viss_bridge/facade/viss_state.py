"""State the VISS endpoint shares across gunicorn workers and nodes: its transactions.

They live in the bridge's database, so a transaction opened on one worker (or
node) can be used and ended on another. Seen message ids are in the shared
replay table (viss_bridge/facade/replay.py), with /xroad's.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import Column, DateTime, MetaData, String, Table, insert, select, update
from sqlalchemy.engine import Engine

from viss_bridge.db import create_tables

metadata = MetaData()

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
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create_schema(self) -> None:
        create_tables(metadata, self.engine)

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
