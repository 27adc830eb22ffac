"""Progress bars for the CLI's long jobs: shown on a terminal, silent in ``--json`` and in pipes.

The packages below report progress as ``progress(done, total)`` (``total`` None when unknown, e.g.
a provider's change feed); this module turns that into click's progress bar on stderr, so stdout
keeps only the command's result and scripts reading it see no difference.
"""

from __future__ import annotations

import itertools
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterable, Iterator, TypeVar

import click

Progress = Callable[[int, "int | None"], None]
T = TypeVar("T")


def _silent(_done: int, _total: int | None = None) -> None:
    return None


def wanted(quiet: bool = False) -> bool:
    """A bar only for a person watching a terminal."""
    return not quiet and sys.stderr.isatty()


@contextmanager
def progress_bar(label: str, total: int | None = None, quiet: bool = False) -> Iterator[Progress]:
    """Yield ``progress(done, total)``; ``done`` is absolute, so callers need not keep deltas."""
    if not wanted(quiet):
        yield _silent
        return
    source: Any = itertools.repeat(None) if total is None else None
    with click.progressbar(source, length=total, label=label, file=sys.stderr, show_pos=True,
                           show_percent=total is not None, show_eta=total is not None) as bar:
        def update(done: int, new_total: int | None = None) -> None:
            if new_total is not None and new_total != bar.length:  # the total became known on the way
                bar.length = new_total
                bar.show_percent = bar.show_eta = True
            if done > bar.pos:
                bar.update(done - bar.pos)
        yield update


def counted(items: Iterable[T], progress: Progress, total: int | None = None, start: int = 0,
            every: int = 100) -> Iterator[T]:
    """Pass ``items`` through, reporting how many went by (every ``every`` items and at the end)."""
    done = start
    for done, item in enumerate(items, start + 1):
        yield item
        if done % every == 0:
            progress(done, total)
    progress(done, total)
