"""The limits of a training: its time (MAX_TRAIN_SECONDS, or the fit's own max_seconds) and
its process's memory (MAX_TRAIN_MEMORY_MB). The Trainer's watcher asks which one a running
fit has gone past, and stops it with the message given here."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class TrainingLimits:
    max_seconds: float = 0.0  # 0: none
    max_memory_mb: float = 0.0  # 0: none

    def time_limit(self, requested: float | None) -> tuple[float, str] | None:
        """The binding time limit and the name a user knows it by, or None."""
        if requested and (not self.max_seconds or requested < self.max_seconds):
            return requested, "max_seconds"
        if self.max_seconds:
            return self.max_seconds, "MAX_TRAIN_SECONDS"
        return None

    def exceeded(
        self,
        name: str,
        time_limit: tuple[float, str] | None,
        started: float,
        memory_bytes: Callable[[], int | None],
    ) -> tuple[str, str] | None:
        """The limit a running fit has gone past, and what to tell its client; or None.
        `started` is its `time.monotonic()` at the start."""
        if time_limit is not None:
            seconds, label = time_limit
            if time.monotonic() - started > seconds:
                return label, (
                    f"the training of '{name}' was stopped after {seconds:g} s, the limit set by "
                    f"{label}={seconds:g}; nothing was saved"
                )
        if self.max_memory_mb:
            used = memory_bytes()
            if used is not None and used > self.max_memory_mb * 2**20:
                return "MAX_TRAIN_MEMORY_MB", (
                    f"the training of '{name}' was stopped: its process used {used / 2**20:.0f} "
                    f"MB, over MAX_TRAIN_MEMORY_MB={self.max_memory_mb:g}; nothing was saved"
                )
        return None
