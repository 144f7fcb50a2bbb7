"""The seam between the jobs and whatever runs them.

A `TrainingBackend` runs one training per slot and says how many slots exist; a `Run` is one
training in flight on it: its outcome, its progress, its memory, and a way to stop it. The
Trainer (server.training.trainer) keeps the jobs, the gate and the limits, and does not care
which backend runs underneath: local worker processes (server.training.backends.local) or a cluster.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from typing import Any

from server.ml.progress import Progress
from server.store.files import ModelStore
from server.training.request import TrainingRequest


class Run(ABC):
    """One training in flight. `outcome` resolves to the saved model's metadata, or fails
    with a ServiceError (422 the estimator refused, 500 the process died or the save failed)."""

    outcome: asyncio.Future[dict[str, Any]]

    @abstractmethod
    def progress(self) -> Progress:
        """Iterations done, planned (None when unknown), and the phase: cheap, no I/O."""

    @abstractmethod
    def memory_bytes(self) -> int | None:
        """Resident memory of what runs the training, or None if it can't be measured."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the training now, whatever it is doing. When this returns, nothing of it
        runs any more and its slot is free again; `outcome` is then of no interest."""


class TrainingBackend(ABC):
    name: str

    @abstractmethod
    async def start(self) -> None:
        """Get ready to train (start processes, connect to a cluster)."""

    @abstractmethod
    async def close(self) -> None:
        """Stop everything that runs; trainings in flight are lost."""

    @abstractmethod
    def capacity(self) -> int:
        """How many trainings can run at once, right now."""

    @abstractmethod
    def run(self, request: TrainingRequest, store: ModelStore) -> Run:
        """Start `request` in a free slot, at once (the caller checked that one is free).
        The model ends up saved, signed, in `store` when `outcome` succeeds."""

    def describe(self) -> dict[str, Any]:
        """What GET /status shows of the backend."""
        return {"backend": self.name}

    def worker_pids(self) -> list[int]:
        """The local processes that train (tests and benchmarks look at them)."""
        return []
