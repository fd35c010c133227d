"""Freed heap handed back to the system (glibc's malloc_trim) between pipeline stages."""

import sys

import pytest

from edgevis.core.heap import release_freed_memory


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc and glibc's malloc_trim")
def test_freed_small_objects_are_returned_to_the_system():
    blocks = [bytearray(2048) for _ in range(60_000)]  # ~120 MB of small heap blocks, like an exporter's
    keep = blocks[-1]  # one live block at the top of the heap: plain free() cannot shrink past it
    del blocks
    held = _rss_mb()
    assert release_freed_memory() is True
    assert _rss_mb() < held - 60  # most of the 120 MB went back
    assert keep[0] == 0
