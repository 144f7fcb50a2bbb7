"""The capture files' lock: many readers (the report, the export) and the writer that only
adds files may go at once; what deletes or rewrites files (erasure, expiry, a removal) goes
alone, so a reader sees the rows before it or after it, never a file gone from under it.
Feedback goes alone too: it counts a request's rows in the files and in the writer's hands,
which must not change between the two looks."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class FilesLock:
    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._sharing = 0
        self._exclusive = False

    @contextmanager
    def shared(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._exclusive)
            self._sharing += 1
        try:
            yield
        finally:
            with self._changed:
                self._sharing -= 1
                self._changed.notify_all()

    @contextmanager
    def exclusive(self) -> Iterator[None]:
        with self._changed:
            self._changed.wait_for(lambda: not self._exclusive)
            self._exclusive = True  # new readers wait from now: a deletion is never starved
            self._changed.wait_for(lambda: self._sharing == 0)
        try:
            yield
        finally:
            with self._changed:
                self._exclusive = False
                self._changed.notify_all()
