"""Process tuning for steady cyclic work (applied once by :meth:`Kernel.start`).

glibc's malloc returns every freed block above its mmap threshold (128 KiB to start with) to
the operating system and trims the heap top; the next cycle's arrays of the same size then
fault their pages in again. A cyclic power flow on 10,000 buses allocates a few dozen such
arrays (30,000 floats each) per cycle, and in a virtual machine a page fault costs
microseconds: building the result tables took ~2.7 ms instead of ~0.7 ms. Raising the mmap
threshold to 32 MiB and the trim threshold to 256 MiB keeps those blocks in the heap for reuse
(the process keeps its peak working set, as a long-running server should).

Set ``LEITSTAND_MALLOC_TUNING=0`` to leave the allocator alone; glibc's own ``MALLOC_*``
environment variables, if set, are respected. No effect on other platforms or C libraries.
"""

from __future__ import annotations

import ctypes
import os
import sys

__all__ = ["tune_allocator"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 32 * 1024 * 1024  # glibc's maximum on 64-bit
_TRIM_THRESHOLD = 256 * 1024 * 1024
_done: bool | None = None


def tune_allocator() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; ``True`` if applied."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if not sys.platform.startswith("linux") or os.environ.get("LEITSTAND_MALLOC_TUNING", "1") == "0":
        return False
    if any(name in os.environ for name in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)) and bool(mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _done
