"""Group commit of the message log: the exchanges that wait to be logged share one transaction.

The mechanism is :mod:`viss_bridge.grouping` (shared with the access writes); here a failed batch
raises :class:`LogUnavailable`, so every caller in it answers ``LoggingFailed`` and none is
acknowledged. The log's ``write`` takes the node's lock (SQLite: the writer lock and ``BEGIN
IMMEDIATE``; PostgreSQL: the head row ``FOR UPDATE``) before it takes the batch.
"""

from __future__ import annotations

from typing import Callable, TypeVar

from viss_bridge.grouping import GroupCommit as _GroupCommit
from viss_bridge.grouping import run_alone
from viss_bridge.msglog.store import LogUnavailable

__all__ = ["GroupCommit", "run_alone"]

Item = TypeVar("Item")
Result = TypeVar("Result")


class GroupCommit(_GroupCommit[Item, Result]):
    """:class:`viss_bridge.grouping.GroupCommit` whose failed batches raise :class:`LogUnavailable`."""

    def __init__(self, write: Callable[[Callable[[], list[Item]]], list[Result]], max_batch: int = 256,
                 after: Callable[[list[Item]], None] | None = None) -> None:
        super().__init__(write, max_batch, failure=LogUnavailable, after=after)
