"""Progress through shared memory: the local backend's sink writes three doubles that the
server reads a few times a second, so an iteration costs one store, never a message through
the event loop (the contract is server.ml.progress)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from server.ml.progress import PHASES, Progress


class SharedProgress:
    """Writes into a slot's three shared doubles: [done, total, phase]. A total of -1 means
    unknown; the phase is its index in PHASES. Aligned 8-byte stores are atomic on the
    platforms we run on, so no lock is needed."""

    stopped = False  # a local fit is stopped by killing its process

    def __init__(self, cells: Sequence[float]) -> None:
        self._cells: Any = cells

    def begin(self, total: int | None) -> None:
        self._cells[0] = 0.0
        self._cells[1] = float(total) if total is not None else -1.0
        self._cells[2] = 0.0

    def phase(self, name: str) -> None:
        self._cells[2] = float(PHASES.index(name))

    def advance(self, done: int) -> None:
        self._cells[0] = float(done)

    def finish(self) -> None:
        if self._cells[1] > 0:
            self._cells[0] = self._cells[1]


def read_shared(cells: Sequence[float]) -> Progress:
    """The cells as the server reads them; total None when unknown or not yet begun."""
    done, total, phase = cells[0], cells[1], cells[2]
    return Progress(done, total if total > 0 else None, PHASES[int(phase)])
