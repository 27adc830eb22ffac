"""After a catalog version is dropped the watcher gives glibc's free pages back: RSS falls, it does not creep."""

from __future__ import annotations

import ctypes.util
import sys

import pytest

from viss_bridge.memtrim import return_freed_memory


def rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096 / 1e6


@pytest.mark.skipif(not sys.platform.startswith("linux") or "libc.so.6" not in str(ctypes.util.find_library("c")),
                    reason="malloc_trim is glibc's")
def test_freed_pages_between_live_objects_go_back_to_the_system() -> None:
    # Like a replaced catalog version: many malloc'd objects (above pymalloc's 512-byte limit), most freed,
    # a few kept alive among them, so the heap cannot shrink from its top and RSS stays up until trimmed.
    objects = [bytes(2000) + i.to_bytes(4, "big") for i in range(60_000)]
    kept = objects[::50]
    del objects
    before = rss_mb()
    assert return_freed_memory() is True
    after = rss_mb()
    assert after < before - 50, (before, after)  # ~118 MB were freed; most of it goes back
    assert len(kept) == 1200
