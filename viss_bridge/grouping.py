"""Group commit: concurrent callers' writes go into one transaction, one disk flush.

Why: a durable commit costs one fsync (SQLite WAL, ``synchronous=FULL``) or one WAL flush
(PostgreSQL), and writers of one database are serialised on a lock (the node's chain head, the
SQLite writer lock, a permission row). With one transaction per caller, callers queue behind each
other's flushes and lock waits; with one transaction for everything that is waiting, a flush and
a lock are paid once for the whole queue. Used by the message log (``msglog.log``) and by the
per-answer access writes (``access.batch``).

How (leader/follower, no extra thread to supervise): a caller puts its work in the queue. If no
commit is in progress in this process, it becomes the *leader*: it calls ``write(take)``, which opens
the transaction, takes the cross-process lock it needs and only *then* calls ``take()``, so everyone
who queued while the leader waited for that lock rides in the same transaction. Each caller returns
only once the transaction holding its work has committed; if it fails, every caller in that batch
gets the same error and none of them is acknowledged. After a commit the leader hands the lead to
the first caller still queued (who starts the next transaction at once), runs ``after(items)`` for
the committed batch if one was given (work that must follow the commit, e.g. the answers' tracker
entries: one call for the whole batch instead of one rendezvous per caller), then wakes the batch's
callers and returns.

Across processes the database's lock does the grouping: while one process holds it and flushes,
the other processes' callers queue up, and each of those processes writes its whole queue in its
next transaction.

A leaf module (no project imports) so that ``msglog`` and ``access`` share it.
"""

from __future__ import annotations

import threading
from typing import Callable, Generic, TypeVar, cast

Item = TypeVar("Item")
Result = TypeVar("Result")


class _Ticket(Generic[Item, Result]):
    __slots__ = ("item", "wake", "lead", "finished", "result", "error")

    def __init__(self, item: Item) -> None:
        self.item = item
        # A bare lock used as a one-shot signal (held from the start; another thread's release wakes the
        # waiter): the cheapest wake-up Python has, where an Event builds a Condition and its waiter locks.
        self.wake = threading.Lock()
        self.wake.acquire()
        self.lead = False
        self.finished = False
        self.result: Result | None = None
        self.error: BaseException | None = None


class GroupCommit(Generic[Item, Result]):
    """Batches concurrent ``submit`` calls of one process into calls of ``write``.

    ``write(take)`` must call ``take()`` exactly once, when it holds the lock the batch needs, and
    return one result per item taken, in order; it raises if the batch was not committed.
    """

    def __init__(self, write: Callable[[Callable[[], list[Item]]], list[Result]], max_batch: int = 256,
                 failure: Callable[[str], Exception] = RuntimeError,
                 after: Callable[[list[Item]], None] | None = None) -> None:
        """``failure``: the exception every caller of a failed batch raises (chained to the cause);
        ``after``: called by the leader with a committed batch's items before their callers return (it must
        not raise: the batch is committed whatever it does, so it reports its own errors)."""
        self._write = write
        self._failure = failure
        self._after = after
        self.max_batch = max(1, max_batch)
        self._lock = threading.Lock()
        self._queue: list[_Ticket[Item, Result]] = []
        self._leading = False

    @property
    def waiting(self) -> int:
        """How many submissions are queued and not yet taken into a transaction (tests, metrics)."""
        with self._lock:
            return len(self._queue)

    def submit(self, item: Item) -> Result:
        """Return ``item``'s result once the transaction holding it committed; raise ``failure`` if not."""
        ticket: _Ticket[Item, Result] = _Ticket(item)
        with self._lock:
            self._queue.append(ticket)
            if not self._leading:  # invariant: a non-empty queue always has a leader
                self._leading = True
                ticket.lead = True
        while not ticket.finished:
            if ticket.lead:
                ticket.lead = False
                self._lead(ticket)
            else:
                ticket.wake.acquire()  # released once: to lead, or because a leader finished this ticket
        error = ticket.error
        if error is not None:
            if not isinstance(error, Exception):
                raise error  # SystemExit or KeyboardInterrupt in this very thread: let it through
            raise self._failure(str(error)) from error
        # finished without an error, so the leader stored this ticket's result (None is its placeholder before)
        return cast(Result, ticket.result)

    def _take(self) -> list[_Ticket[Item, Result]]:
        with self._lock:
            batch = self._queue[:self.max_batch]
            del self._queue[:self.max_batch]
        return batch

    def _lead(self, own: _Ticket[Item, Result]) -> None:
        batch: list[_Ticket[Item, Result]] = []
        taken = False

        def take() -> list[Item]:
            nonlocal batch, taken
            if taken:
                raise RuntimeError("a group commit batch is taken once")
            taken = True
            batch = self._take()
            return [t.item for t in batch]

        committed = False
        try:
            results = self._write(take)
            if len(results) != len(batch):
                raise RuntimeError(f"group commit wrote {len(results)} results for {len(batch)} submissions")
        except BaseException as exc:  # noqa: BLE001 - every waiter must learn the outcome, whatever it is
            if not taken:  # failed before the batch was formed: fail those it would have held (the leader too)
                batch = self._take()
            for ticket in batch:
                ticket.error = exc
        else:
            committed = True
            for ticket, result in zip(batch, results):
                ticket.result = result
        finally:
            self._hand_over(batch, own, committed)

    def _hand_over(self, batch: list[_Ticket[Item, Result]], own: _Ticket[Item, Result], committed: bool) -> None:
        with self._lock:
            successor = self._queue[0] if self._queue else None
            if successor is not None:
                successor.lead = True
            else:
                self._leading = False
        if successor is not None:  # the next transaction starts while this one's follow-up work runs
            successor.wake.release()
        try:
            if committed and self._after is not None and batch:
                self._after([t.item for t in batch])
        finally:
            with self._lock:
                for ticket in batch:
                    ticket.finished = True
            for ticket in batch:
                if ticket is not own:  # the leader's thread is not waiting; every other ticket is released once
                    ticket.wake.release()


def run_alone(write: Callable[[Callable[[], list[Item]]], list[Result]], item: Item,
              after: Callable[[list[Item]], None] | None = None) -> Result:
    """One submission in its own transaction (the pre-group-commit behaviour; a baseline for benchmarks)."""
    result = write(lambda: [item])[0]
    if after is not None:
        after([item])
    return result
