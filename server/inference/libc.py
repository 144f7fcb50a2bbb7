"""The C library's functions that Python does not wrap (prctl, malloc_trim), looked up once.

`CDLL(None)` opens the symbols already loaded into this process, the C library's among
them: no search on disk (`ctypes.util.find_library` runs a program on every call).
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable
from typing import Any


@functools.cache
def libc_function(name: str) -> Callable[..., Any] | None:
    """The C function `name`, or None where this C library has no such function."""
    try:
        function: Callable[..., Any] = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    return function
