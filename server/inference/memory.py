"""Give memory back to the OS once a model is unloaded.

glibc's malloc keeps freed memory in its arenas (one per thread that allocated), so after
an unload the RSS stays near its high-water mark until `malloc_trim` hands the free pages
back. Where the C library has no `malloc_trim` (musl, macOS), only the GC runs.
"""

from __future__ import annotations

import gc

from server.inference.libc import libc_function


def release_unused_memory() -> None:
    """Blocking (a few ms): run it off the event loop."""
    gc.collect()
    malloc_trim = libc_function("malloc_trim")
    if malloc_trim is not None:
        malloc_trim(0)
