"""Group-committed access writes (access/batch.py): fewer transactions, the same exact counts.

Concurrent reservations of one process share transactions; however they are grouped, exactly as many
succeed as the quota holds, each of the rest is refused with the row's reason, give-backs free quota,
and tracker entries are written once each. Two processes counting against one quota never exceed it.
On SQLite and PostgreSQL.
"""

from __future__ import annotations

import multiprocessing
import threading
from typing import Any

import pytest

from viss_bridge.access.batch import AccessWrites
from viss_bridge.access.registry import (RELEASE, RESERVE, TRACK, AccessRegistry, UsageRow, UseRefused, UseWrite,
                                         apply_use_writes)
from viss_bridge.access.tables import usage_entries
from viss_bridge.db import make_engine


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def url(request, tmp_path) -> str:  # type: ignore[no-untyped-def]
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'access.sqlite'}"
    return str(request.getfixturevalue("pg_database"))


def registry_with(url: str, quota: int | None) -> tuple[AccessRegistry, str]:
    registry = AccessRegistry(make_engine(url))
    registry.create_schema()
    registry.add_client("LV/GOV/1/C", "c")
    return registry, registry.grant("LV/GOV/1/C", "fpr_person", purpose="p", legal_basis="law", quota=quota).number


def row(i: int, number: str) -> UsageRow:
    return UsageRow(person=f"P{i}", client_id="LV/GOV/1/C", dataset="fpr_person", purpose="p",
                    permission_number=number, user_id=None, message_id=f"m-{i}")


def test_one_transaction_takes_exactly_what_the_quota_holds(url: str) -> None:
    registry, number = registry_with(url, quota=5)
    with registry.engine.begin() as conn:
        assert apply_use_writes(conn, [UseWrite(RESERVE, number)] * 3) == [None] * 3
    with registry.engine.begin() as conn:  # 4 asked, 2 left: the first two succeed, the rest are refused
        results = apply_use_writes(conn, [UseWrite(RESERVE, number)] * 4 + [UseWrite(TRACK, rows=(row(1, number),))])
    assert results[:2] == [None, None] and results[4] is None
    assert all(isinstance(r, UseRefused) and "whole quota of 5" in str(r) for r in results[2:4])
    assert results[2] is not results[3]  # each caller raises its own exception object
    with registry.engine.begin() as conn:  # a give-back frees one use for a reserve in the same transaction
        assert apply_use_writes(conn, [UseWrite(RESERVE, number), UseWrite(RELEASE, number)]) == [None, None]
    stored = registry.permission(number)
    assert stored is not None and stored.used == 5
    with registry.engine.connect() as conn:
        assert conn.execute(usage_entries.select()).all().__len__() == 1


def test_revoked_permission_refuses_a_whole_batch(url: str) -> None:
    registry, number = registry_with(url, quota=None)
    registry.revoke_permission(number, reason="ended")
    with registry.engine.begin() as conn:
        results = apply_use_writes(conn, [UseWrite(RESERVE, number)] * 3)
    assert all(isinstance(r, UseRefused) and "revoked: ended" in str(r) for r in results)
    assert registry.permission(number).used == 0  # type: ignore[union-attr]


def test_concurrent_threads_share_transactions_and_stay_exact(url: str) -> None:
    registry, number = registry_with(url, quota=40)
    writes = AccessWrites(registry.engine)
    outcomes: list[str] = []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def answer(i: int) -> None:
        barrier.wait()
        for j in range(5):
            try:
                writes.reserve(number)
            except UseRefused:
                outcome = "refused"
            else:
                writes.track([row(i * 10 + j, number)])
                outcome = "given"
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=answer, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert outcomes.count("given") == 40 and outcomes.count("refused") == 40
    assert registry.permission(number).used == 40  # type: ignore[union-attr]
    with registry.engine.connect() as conn:
        assert len(conn.execute(usage_entries.select()).all()) == 40
    assert writes.writes == 120 and writes.commits < writes.writes  # grouped: fewer transactions than writes


def _count_in_process(url: str, number: str, tries: int, results: Any) -> None:
    engine = make_engine(url)
    writes = AccessWrites(engine)
    given: list[int] = []
    barrier = threading.Barrier(4)

    def worker() -> None:
        barrier.wait()
        for _ in range(tries):
            try:
                writes.reserve(number)
            except UseRefused:
                continue
            given.append(1)  # list.append is atomic

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    results.put(len(given))


def test_two_processes_never_exceed_a_quota(url: str) -> None:
    registry, number = registry_with(url, quota=30)
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=_count_in_process, args=(url, number, 12, results)) for _ in range(2)]
    for process in processes:
        process.start()
    given = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(30)
    assert sum(given) == 30  # 96 tries for 30 uses
    assert registry.permission(number).used == 30  # type: ignore[union-attr]


def test_unlimited_permission_is_checked_before_and_counted_once_served(url: str) -> None:
    registry, number = registry_with(url, quota=None)
    limited = registry.grant("LV/GOV/1/C", "fpr_person", purpose="q", legal_basis="law", quota=3).number
    writes = AccessWrites(registry.engine)
    assert writes.unlimited(number) is True and writes.unlimited(limited) is False
    writes.track([row(1, number)], count=number)  # served: counted with its entry
    writes.track([], count=number)  # served, no person in the answer: counted all the same
    assert registry.permission(number).used == 2  # type: ignore[union-attr]
    registry.revoke_permission(number, reason="over")
    with pytest.raises(UseRefused, match="revoked: over"):
        writes.unlimited(number)  # the very next check sees the revocation


def test_policy_counts_an_unlimited_use_only_when_served(url: str) -> None:
    from viss_bridge.access.policy import RegistryPolicy
    from viss_bridge.catalog.manifest import Dataset

    registry, number = registry_with(url, quota=None)
    policy = RegistryPolicy(registry)
    dataset = Dataset.model_validate({"dataset": "fpr_person", "version": "v1", "title": {"lv": "p", "en": "p"},
                                      "owner": "LV/GOV/90000000001/FPR", "key": ["person_code"],
                                      "subject": "person_code", "access": "restricted",
                                      "fields": [{"name": "person_code", "type": "string"}]})
    decision = policy.decide("LV/GOV/1/C", dataset)
    refused = policy.reserve_use(decision, dataset, ["010190-10009"], message_id="m-1")
    assert refused is not None
    refused.release()  # e.g. LoggingFailed: nothing counted, nothing tracked
    served = policy.reserve_use(decision, dataset, ["010190-10009"], message_id="m-2")
    assert served is not None
    served.commit()
    assert registry.permission(number).used == 1  # type: ignore[union-attr]
    with registry.engine.connect() as conn:
        assert [r.message_id for r in conn.execute(usage_entries.select()).all()] == ["m-2"]


def test_the_worker_path_says_why_a_use_is_refused_and_writes_entries_as_tools_read_them(url: str) -> None:
    """AccessWrites runs plain SQL on a worker thread's own connection: the refusal names the row's reason
    as this transaction sees it, and the tracker entries read back through SQLAlchemy like any other."""
    registry, number = registry_with(url, quota=2)
    writes = AccessWrites(registry.engine)
    assert writes.direct.enabled  # a database file or PostgreSQL: the plain-SQL path under test
    writes.reserve(number)
    writes.reserve(number)
    with pytest.raises(UseRefused, match="whole quota of 2"):
        writes.reserve(number)
    writes.release(number)
    writes.reserve(number)  # the give-back freed one use
    writes.track([row(1, number), row(2, number)])
    with registry.engine.connect() as conn:
        stored = conn.execute(usage_entries.select().order_by(usage_entries.c.id)).all()
    assert [(r.person, r.message_id, r.permission_number) for r in stored] == [("P1", "m-1", number), ("P2", "m-2", number)]
    assert all(r.at.year >= 2026 for r in stored)  # a timestamp SQLAlchemy reads back, on SQLite too
    registry.revoke_permission(number, reason="ended early")
    with pytest.raises(UseRefused, match="revoked: ended early"):
        writes.reserve(number)
    assert registry.permission(number).used == 2  # type: ignore[union-attr]
