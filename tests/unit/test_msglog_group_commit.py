"""Group commit of the message log, on SQLite and PostgreSQL.

Concurrent ``record`` calls (threads of one worker, as under gthread; and several worker processes of one
node) must all end up on one contiguous chain that ``log verify`` accepts; calls that queue while a commit
holds the node's lock share the next transaction; and when that transaction fails, every call in it fails
with the same error and none of its records exists (nobody in the batch is acknowledged).
"""

from __future__ import annotations

import fcntl
import multiprocessing
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import pytest

from tests.conftest import cli
from viss_bridge.msglog import LogUnavailable, MessageLog, RecordInput
from viss_bridge.msglog.store import LogStore
from viss_bridge.msglog.verify import verify_log
from viss_bridge.security.keys import SigningKey
from viss_bridge.security.pki import TrustStore


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def log_url(request, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'log.sqlite'}"
    return request.getfixturevalue("pg_database")


def exchange(i: int, exchange_id: str | None = None) -> tuple[RecordInput, RecordInput]:
    ex = exchange_id or f"ex-{i}"
    return (RecordInput(f"<req n='{i}'/>".encode(), "consumer", "request", ex, message_id=f"m-{i}"),
            RecordInput(f"<resp n='{i}'/>".encode(), "consumer", "response", ex, message_id=f"m-{i}", status=200,
                        subjects=["010190-10009"]))


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    return LogStore(url).query(sql)


@contextmanager
def node_lock_held(msglog: MessageLog) -> Iterator[None]:
    """Hold the node's append lock as another worker process mid-commit would (SQLite: writer lock; PG: head row)."""
    store = msglog.store
    if store.is_pg:
        import psycopg

        conn = psycopg.connect(**store.conninfo)
        conn.execute("SELECT seq FROM msglog_head WHERE node_id = %s FOR UPDATE", (msglog.node_id,))
        try:
            yield
        finally:
            conn.rollback()
            conn.close()
    else:
        with open(store.path + ".writer-lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)


def queue_behind_lock(msglog: MessageLog, calls: list[tuple[RecordInput, ...]], *, tokens: bool = False,
                      acknowledged: list[int] | None = None) -> list[Any]:
    """Start one thread per call while the node's lock is held; release it once all of them wait; their outcomes.

    ``tokens``: each call hands ``token-<index>`` as its ``then`` token; ``acknowledged`` gets the index of every
    call that returned."""
    outcomes: list[Any] = [None] * len(calls)

    def call(i: int) -> None:
        try:
            outcomes[i] = msglog.record(*calls[i], then=f"token-{i}" if tokens else None)
        except LogUnavailable as exc:
            outcomes[i] = exc
        if acknowledged is not None:
            acknowledged.append(i)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(len(calls))]
    with node_lock_held(msglog):
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while msglog._group.waiting < len(calls) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert msglog._group.waiting == len(calls)
    for thread in threads:
        thread.join(30)
    return outcomes


def test_concurrent_threads_all_logged_on_one_verifiable_chain(log_url, tmp_path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    msglog = MessageLog(log_url, "node-1", signing_key=SigningKey.from_identity(dev_pki.node), max_seal_records=100)
    msglog.open()
    receipts: list[list[Any]] = []

    def writer(w: int) -> None:
        for i in range(25):
            receipts.append(msglog.record(*exchange(w * 100 + i)))

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert len(receipts) == 400
    seqs = sorted(r.seq for pair in receipts for r in pair)
    assert seqs == list(range(1, 801))  # contiguous, none twice
    assert all(b.seq == a.seq + 1 for a, b in receipts)  # an exchange's two records stay adjacent
    assert rows(log_url, "SELECT COUNT(*), MAX(seq) FROM msglog_record")[0] == (800, 800)
    assert rows(log_url, "SELECT seq FROM msglog_head")[0][0] == 800
    assert msglog.committed_calls == 400 and 1 <= msglog.commits <= 400
    msglog.seal_pending(force=True)
    trust = TrustStore.from_files(dev_pki.ca_cert)
    report = verify_log(LogStore(log_url), trust)
    assert report.ok and report.records == 800 and report.nodes[0].seals == 8, report.text()
    # The same through the worker pool: four ranges of two seals each, checked by two processes.
    report = verify_log(LogStore(log_url, read_only=True), trust, workers=2, range_records=200, parallel_from=0)
    assert report.ok and report.records == 800 and report.nodes[0].seals == 8, report.text()
    result = cli("log", "verify", "--database-url", log_url, "--trust", str(dev_pki.ca_cert))
    assert "LOG VALID" in result.stdout


def test_calls_queued_behind_a_commit_share_the_next_transaction(log_url) -> None:  # type: ignore[no-untyped-def]
    msglog = MessageLog(log_url, "node-1")
    msglog.open()
    outcomes = queue_behind_lock(msglog, [exchange(i) for i in range(8)])
    assert all(isinstance(o, list) for o in outcomes), outcomes
    assert sorted(r.seq for pair in outcomes for r in pair) == list(range(1, 17))
    assert msglog.commits == 1 and msglog.committed_calls == 8  # eight exchanges, one transaction, one flush
    assert len({r.recorded_at for pair in outcomes for r in pair}) == 1


def test_a_failed_transaction_fails_every_call_in_its_batch(log_url, tmp_path, dev_pki) -> None:  # type: ignore[no-untyped-def]
    msglog = MessageLog(log_url, "node-1", signing_key=SigningKey.from_identity(dev_pki.node))
    msglog.open()
    msglog.record(*exchange(0))
    poison(msglog.store)  # the database refuses a record of exchange 'poison' (PostgreSQL: at COMMIT)
    calls = [exchange(i) for i in range(1, 8)] + [exchange(8, exchange_id="poison")]
    outcomes = queue_behind_lock(msglog, calls)
    assert all(isinstance(o, LogUnavailable) for o in outcomes), outcomes
    assert len({str(o) for o in outcomes}) == 1 and "poisoned" in str(outcomes[0])
    assert msglog.append_failure is not None
    # Nothing of the batch is in the log: no record of a call that was refused.
    assert rows(log_url, "SELECT COUNT(*), MAX(seq) FROM msglog_record")[0] == (2, 2)
    assert rows(log_url, "SELECT seq FROM msglog_head")[0][0] == 2
    # The chain goes on from where it was.
    assert [r.seq for r in msglog.record(*exchange(9))] == [3, 4]
    assert msglog.append_failure is None
    msglog.seal_pending(force=True)
    report = verify_log(LogStore(log_url), TrustStore.from_files(dev_pki.ca_cert))
    assert report.ok and report.records == 4, report.text()


def poison(store: LogStore) -> None:
    with store.transaction() as cur:
        if store.is_pg:
            cur.execute("CREATE FUNCTION poison() RETURNS trigger AS $$ BEGIN IF NEW.exchange_id = 'poison' THEN "
                        "RAISE EXCEPTION 'poisoned record'; END IF; RETURN NULL; END $$ LANGUAGE plpgsql")
            cur.execute("CREATE CONSTRAINT TRIGGER poison AFTER INSERT ON msglog_record DEFERRABLE INITIALLY DEFERRED "
                        "FOR EACH ROW EXECUTE FUNCTION poison()")
        else:
            cur.execute("CREATE TRIGGER poison BEFORE INSERT ON msglog_record WHEN NEW.exchange_id = 'poison' "
                        "BEGIN SELECT RAISE(ABORT, 'poisoned record'); END")


def _process_writer(url: str, worker: int, threads: int, calls: int) -> None:
    msglog = MessageLog(url, "node-1")
    msglog.open()

    def writer(t: int) -> None:
        for i in range(calls):
            msglog.record(*exchange(worker * 10_000 + t * 100 + i))

    running = [threading.Thread(target=writer, args=(t,)) for t in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(60)


def test_several_worker_processes_of_one_node_keep_one_contiguous_chain(log_url, dev_pki) -> None:  # type: ignore[no-untyped-def]
    MessageLog(log_url, "node-1").open()
    ctx = multiprocessing.get_context("spawn")
    processes = [ctx.Process(target=_process_writer, args=(log_url, w, 4, 15)) for w in range(3)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(120)
        assert process.exitcode == 0
    assert rows(log_url, "SELECT COUNT(*), MIN(seq), MAX(seq) FROM msglog_record")[0] == (360, 1, 360)
    report = verify_log(LogStore(log_url), TrustStore.from_files(dev_pki.ca_cert), unsealed_grace=None)
    assert report.ok and report.records == 360, report.text()


def test_one_commit_per_call_when_group_commit_is_off(tmp_path: Path) -> None:
    msglog = MessageLog(f"sqlite:///{tmp_path / 'log.sqlite'}", "node-1", group_commit=False)
    msglog.open()
    threads = [threading.Thread(target=lambda w=w: [msglog.record(*exchange(w * 10 + i)) for i in range(5)])
               for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert (msglog.commits, msglog.committed_calls) == (20, 20)
    assert rows(f"sqlite:///{tmp_path / 'log.sqlite'}", "SELECT COUNT(*), MAX(seq) FROM msglog_record")[0] == (40, 40)


def test_work_after_a_commit_gets_every_committed_token_once_before_its_callers_return(log_url) -> None:  # type: ignore[no-untyped-def]
    """What must follow the commit (the answers' tracker entries) runs once per transaction, for all of it,
    before any caller in it is acknowledged; a transaction that failed hands nothing on."""
    msglog = MessageLog(log_url, "node-1")
    msglog.open()
    seen: list[tuple[list[Any], int]] = []
    acknowledged: list[int] = []
    msglog.on_commit = lambda tokens: seen.append((sorted(tokens), len(acknowledged)))
    outcomes = queue_behind_lock(msglog, [exchange(i) for i in range(6)], tokens=True, acknowledged=acknowledged)
    assert all(isinstance(o, list) for o in outcomes), outcomes
    assert seen == [([f"token-{i}" for i in range(6)], 0)] and msglog.commits == 1  # 0: before any returned
    msglog.record(*exchange(7))  # no token: nothing to hand on
    assert len(seen) == 1
    seen.clear()
    poison(msglog.store)
    outcomes = queue_behind_lock(msglog, [exchange(10), exchange(11, exchange_id="poison")], tokens=True)
    assert all(isinstance(o, LogUnavailable) for o in outcomes) and seen == []


def test_a_failing_after_commit_step_leaves_the_records_acknowledged(log_url) -> None:  # type: ignore[no-untyped-def]
    msglog = MessageLog(log_url, "node-1")
    msglog.open()

    def broken(_tokens: list[Any]) -> None:
        raise RuntimeError("the access store is down")

    msglog.on_commit = broken
    receipts = msglog.record(*exchange(1), then="t")
    assert [r.seq for r in receipts] == [1, 2] and msglog.append_failure is None


def test_the_next_transaction_starts_while_the_previous_ones_follow_up_runs(tmp_path: Path) -> None:
    from viss_bridge.grouping import GroupCommit

    release_first = threading.Event()
    order: list[str] = []

    def write(take: Any) -> list[int]:
        items = take()
        order.append(f"commit {items}")
        return items

    def after(items: list[int]) -> None:
        if items == [1]:
            release_first.wait(30)  # the first batch's follow-up is slow
        order.append(f"after {items}")

    group: GroupCommit[int, int] = GroupCommit(write, after=after)
    first = threading.Thread(target=group.submit, args=(1,))
    first.start()
    while "commit [1]" not in order:
        time.sleep(0.001)
    assert group.submit(2) == 2  # committed, followed up and acknowledged while batch 1's follow-up still waits
    assert order == ["commit [1]", "commit [2]", "after [2]"] and first.is_alive()
    release_first.set()
    first.join(30)
    assert order[-1] == "after [1]"
