"""Several workers start together on a fresh database: each creates the same tables, none may fail."""

from __future__ import annotations

import multiprocessing
from pathlib import Path


def _create(url: str, start: object) -> None:
    from viss_bridge.console.accounts import metadata
    from viss_bridge.db import create_tables, make_engine

    start.wait()  # type: ignore[attr-defined]
    create_tables(metadata, make_engine(url))


def test_processes_creating_the_same_tables_at_once_all_succeed(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    for round_ in range(4):
        url = f"sqlite:///{tmp_path / f'race-{round_}.sqlite'}"
        start = context.Event()
        workers = [context.Process(target=_create, args=(url, start)) for _ in range(4)]
        for worker in workers:
            worker.start()
        start.set()
        for worker in workers:
            worker.join(120)
        assert [w.exitcode for w in workers] == [0, 0, 0, 0], round_
