"""Give memory back to the OS once a model is unloaded.

glibc's malloc keeps freed memory in its arenas (one per thread that allocated), so after
an unload the RSS stays near its high-water mark until `malloc_trim` hands the free pages
back. Elsewhere (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys


def _malloc_trim() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc
        return
    trim(0)


def release_unused_memory() -> None:
    """Blocking (a few ms): run it off the event loop."""
    gc.collect()
    _malloc_trim()
