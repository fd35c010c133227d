"""Giving freed memory back to the system between pipeline stages.

The torch exporter allocates and frees hundreds of megabytes of small objects; glibc's
allocator keeps the freed pages, so a process that goes on to quantize carries them
(lsnet_t: 756 MB resident after the export, 510 MB after ``malloc_trim``, with torch
itself about 225 MB of that). Nothing Python-level is alive to free (``gc.collect``
and resetting dynamo's caches changed nothing), so the C allocator is asked directly.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import gc


def release_freed_memory() -> bool:
    """Collect garbage, then ask glibc to return free heap pages to the system; False where there is no
    glibc (musl, macOS, Windows), which is harmless."""
    gc.collect()
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


@functools.lru_cache(maxsize=1)
def _malloc_trim():  # type: ignore[no-untyped-def]
    # looked up once: find_library runs `ldconfig -p` in a subprocess, a fork of a process that may be large
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim
