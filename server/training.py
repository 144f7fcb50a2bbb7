"""Trainer: the training slots, the gate in front of them, and the names in training.

Each slot owns a one-process `ProcessPoolExecutor`. One pool per slot rather than one shared
pool: when a worker dies, CPython breaks its whole pool and fails every fit running in it;
here only that slot's fit fails, and only that slot is rebuilt.

Processes are started with `spawn`: LightGBM and XGBoost hang in children forked from a
process that has run OpenMP threads. The gate never queues: no free slot is a 503 at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.process import BaseProcess
from typing import Any

from server import worker
from server.errors import ModelExists, NoFreeSlot, WorkerCrashed
from server.worker import TrainingJob

logger = logging.getLogger(__name__)

SHUTDOWN_JOIN_SECONDS = 5.0


@dataclass
class TrainingSlot:
    index: int
    executor: ProcessPoolExecutor
    job: TrainingJob | None = None
    started_at: str | None = None

    def _processes(self) -> list[BaseProcess]:
        # CPython keeps no public handle on a pool's processes (3.14 adds terminate_workers).
        return list((getattr(self.executor, "_processes", None) or {}).values())

    def worker_pids(self) -> list[int]:
        return [process.pid for process in self._processes() if process.pid is not None]

    def free(self) -> None:
        self.job = None
        self.started_at = None

    def kill(self) -> None:
        processes = self._processes()
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(SHUTDOWN_JOIN_SECONDS)
        # The pool's manager thread sees the dead process, fails its future and exits;
        # waiting for it lets the pool release its queues and semaphores.
        self.executor.shutdown(wait=True, cancel_futures=True)


class Trainer:
    def __init__(
        self,
        slots: int,
        retry_after_seconds: int,
        warm: bool,
        nice: int = 0,
        idle_priority: bool = False,
    ) -> None:
        self._slot_count = slots
        self._nice = nice
        self._idle_priority = idle_priority
        self._retry_after = retry_after_seconds
        self._warm = warm
        self._slots: list[TrainingSlot] = []
        self._closed = False
        self._context = multiprocessing.get_context("spawn")

    # -- life cycle ------------------------------------------------------------------------
    def start(self) -> None:
        self._slots = [TrainingSlot(i, self._new_executor()) for i in range(self._slot_count)]

    def close(self) -> None:
        """Stop every training process now; a fit still running is lost (its temporary
        file is removed at the next start-up)."""
        self._closed = True
        for slot in self._slots:
            slot.kill()

    def _new_executor(self) -> ProcessPoolExecutor:
        """A one-process pool; with `warm`, its process starts now rather than at a fit."""
        executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=self._context,
            initializer=worker.initialize,
            initargs=(os.getpid(), self._nice, self._idle_priority),
        )
        if self._warm:
            executor.submit(worker.warm_up)
        return executor

    # -- state -------------------------------------------------------------------------------
    @property
    def slot_count(self) -> int:
        return self._slot_count

    def training(self) -> dict[str, dict[str, Any]]:
        """What is known of each model in training, by name."""
        return {
            slot.job.name: {
                "name": slot.job.name,
                "model_type": slot.job.model_type,
                "status": "training",
                "hyperparameters": slot.job.hyperparameters,
                "n_samples": int(slot.job.X.shape[0]),
                "n_features": int(slot.job.X.shape[1]),
                "classes": slot.job.classes,
                "created_at": slot.started_at,
            }
            for slot in self._slots
            if slot.job is not None
        }

    def is_training(self, name: str) -> bool:
        return any(slot.job is not None and slot.job.name == name for slot in self._slots)

    def worker_pids(self) -> list[int]:
        return [pid for slot in self._slots for pid in slot.worker_pids()]

    # -- training ----------------------------------------------------------------------------
    def _claim(self, job: TrainingJob) -> TrainingSlot:
        if self.is_training(job.name):
            raise ModelExists(f"model '{job.name}' is being trained right now")
        for slot in self._slots:
            if slot.job is None:
                slot.job = job
                slot.started_at = datetime.now(UTC).isoformat()
                return slot
        raise NoFreeSlot(
            f"all {self._slot_count} training slot(s) are busy; retry in a few seconds",
            headers={"Retry-After": str(self._retry_after)},
        )

    def _submit(self, slot: TrainingSlot, job: TrainingJob) -> Future[dict[str, Any]]:
        try:
            return slot.executor.submit(worker.train_and_save, job)
        except BrokenProcessPool:  # its process died while idle
            self._rebuild(slot)
            return slot.executor.submit(worker.train_and_save, job)

    async def train(self, job: TrainingJob) -> dict[str, Any]:
        """Run `job` in a free slot's process, or refuse at once (409 same name, 503 full).

        The checks and the claim happen before the first await, so a caller that checked
        something else just before (the name on disk) did it in the same step. The slot
        stays taken until the process is done, even if the awaiting request is cancelled.
        """
        loop = asyncio.get_running_loop()
        slot = self._claim(job)
        try:
            future = self._submit(slot, job)
        except BaseException:
            slot.free()
            raise
        future.add_done_callback(lambda done: self._on_done(loop, slot, done))
        outcome = asyncio.wrap_future(future)
        # If the request is cancelled, nobody awaits `outcome`: mark its error as seen.
        outcome.add_done_callback(lambda done: done.cancelled() or done.exception())
        try:
            return await asyncio.shield(outcome)
        except BrokenProcessPool:
            raise WorkerCrashed(
                f"the training process for '{job.name}' died (out of memory, or killed); "
                "nothing was saved and the slot is free again"
            ) from None

    def _on_done(
        self, loop: asyncio.AbstractEventLoop, slot: TrainingSlot, done: Future[dict[str, Any]]
    ) -> None:
        # Runs in the executor's thread: hand over to the event loop, which owns the state.
        with contextlib.suppress(RuntimeError):  # the loop is closed: shutting down
            loop.call_soon_threadsafe(self._release, slot, done)

    def _release(self, slot: TrainingSlot, done: Future[dict[str, Any]]) -> None:
        slot.free()
        crashed = not done.cancelled() and isinstance(done.exception(), BrokenProcessPool)
        if crashed and not self._closed:
            self._rebuild(slot)

    def _rebuild(self, slot: TrainingSlot) -> None:
        logger.warning("training process of slot %d died; starting a new one", slot.index)
        slot.kill()
        slot.executor = self._new_executor()
