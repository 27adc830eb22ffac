"""Progress bars for the CLI's long jobs: shown on a terminal, silent in ``--json`` and in pipes.

The packages below report progress as ``progress(done, total)`` (``total`` None when unknown, e.g.
a provider's change feed); this module turns that into click's progress bar on stderr, so stdout
keeps only the command's result and scripts reading it see no difference.
"""

from __future__ import annotations

import itertools
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import click

Progress = Callable[[int, "int | None"], None]


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
