"""The local backend: one worker process of this server per training slot.

Each slot owns a one-process `ProcessPoolExecutor`. One pool per slot rather than one shared
pool: when a worker dies, CPython breaks its whole pool and fails every fit running in it;
here only that slot's fit fails, and only that slot is rebuilt. The same makes a stop cheap
and certain: kill the slot's process, whatever the library is doing, and start a new one.

Processes are started with `spawn`: LightGBM and XGBoost hang in children forked from a
process that has run OpenMP threads. Each slot also owns two shared doubles into which its
process writes the progress of the current fit (server.training.progress).
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
from multiprocessing.process import BaseProcess
from typing import Any

import psutil

from server.errors import NoFreeSlot, WorkerCrashed
from server.ml.progress import Progress
from server.store.files import ModelStore
from server.training.backend import Run, TrainingBackend
from server.training.backends.child import InChild
from server.training.cores import CorePlan, allowed_cores
from server.training.progress import read_shared
from server.training.request import TrainingRequest

logger = logging.getLogger(__name__)

SHUTDOWN_JOIN_SECONDS = 5.0


@dataclass
class LocalSlot:
    index: int
    executor: ProcessPoolExecutor
    progress_cells: Any  # multiprocessing RawArray("d", 3): [done, total, phase]
    run: LocalRun | None = None

    def _processes(self) -> list[BaseProcess]:
        # CPython keeps no public handle on a pool's processes (3.14 adds terminate_workers).
        return list((getattr(self.executor, "_processes", None) or {}).values())

    def worker_pids(self) -> list[int]:
        return [process.pid for process in self._processes() if process.pid is not None]

    def kill(self) -> None:
        """Blocking: SIGKILL the process, reap it, and let the pool release its resources."""
        processes = self._processes()
        for process in processes:
            if process.is_alive():
                process.kill()
        for process in processes:
            process.join(SHUTDOWN_JOIN_SECONDS)
        # The pool's manager thread sees the dead process, fails its future and exits;
        # waiting for it lets the pool release its queues and semaphores.
        self.executor.shutdown(wait=True, cancel_futures=True)


class LocalRun(Run):
    def __init__(self, backend: LocalBackend, slot: LocalSlot, name: str) -> None:
        self._backend = backend
        self._slot = slot
        self._name = name
        self.stopped = False
        self.outcome = asyncio.get_running_loop().create_future()

    def progress(self) -> Progress:
        return read_shared(self._slot.progress_cells)

    def memory_bytes(self) -> int | None:
        pids = self._slot.worker_pids()
        if not pids:
            return None
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            return int(psutil.Process(pids[0]).memory_info().rss)
        return None

    async def stop(self) -> None:
        if self._slot.run is not self:  # it has ended: the slot may run another fit now
            return
        self.stopped = True
        await asyncio.to_thread(self._slot.kill)
        self._backend.replace_process(self._slot)
        self._slot.run = None

    def settle(self, done: Future[dict[str, Any]]) -> None:
        """On the event loop, once the process has answered (or died)."""
        if self.stopped:  # stop() owns the slot and the outcome no longer matters
            return
        self._slot.run = None
        if done.cancelled():
            self.outcome.cancel()
            return
        error = done.exception()
        if isinstance(error, BrokenProcessPool):
            logger.warning("training process of slot %d died; starting a new one", self._slot.index)
            self._backend.replace_process(self._slot)
            self.outcome.set_exception(
                WorkerCrashed(
                    f"the training process for '{self._name}' died (out of memory, or killed); "
                    "nothing was saved and the slot is free again"
                )
            )
        elif error is not None:
            self.outcome.set_exception(error)
        else:
            self.outcome.set_result(done.result())


class LocalBackend(TrainingBackend):
    name = "local"

    def __init__(
        self, slots: int, warm: bool, cores: CorePlan | None = None, idle_priority: bool = False
    ) -> None:
        self._slot_count = slots
        self._warm = warm
        self.cores = cores or CorePlan(None, None, 0)
        self._idle_priority = idle_priority
        self._context = multiprocessing.get_context("spawn")
        self._slots: list[LocalSlot] = []
        self._closed = False

    def describe(self) -> dict[str, Any]:
        """The backend, and its plan of cores: how many the trainings have, and the one
        kept for the server (None: not pinned)."""
        cores = self.cores.training_cores
        count = len(cores) if cores is not None else len(allowed_cores())
        return {
            "backend": self.name,
            "training_cores": count,
            "server_core": self.cores.server_core,
        }

    async def start(self) -> None:
        self._slots = []
        for index in range(self._slot_count):
            cells = self._context.RawArray("d", 3)
            self._slots.append(LocalSlot(index, self._new_executor(cells), cells))

    async def close(self) -> None:
        """Stop every training process now; a fit still running is lost (its temporary
        file is removed at the next start-up)."""
        self._closed = True
        for slot in self._slots:
            slot.kill()

    def capacity(self) -> int:
        return self._slot_count

    def worker_pids(self) -> list[int]:
        return [pid for slot in self._slots for pid in slot.worker_pids()]

    def _new_executor(self, cells: Any) -> ProcessPoolExecutor:
        """A one-process pool; with `warm`, its process starts now rather than at a fit."""
        executor = ProcessPoolExecutor(
            max_workers=1,
            mp_context=self._context,
            initializer=InChild("initialize"),
            initargs=(
                os.getpid(),
                self.cores.nice,
                self._idle_priority,
                cells,
                self.cores.training_cores,
            ),
        )
        if self._warm:
            executor.submit(InChild("warm_up"))
        return executor

    def replace_process(self, slot: LocalSlot) -> None:
        """After a stop or a crash: reap what is left and give the slot a new process."""
        if self._closed:
            return
        slot.kill()  # instant here: the process is dead already
        slot.executor = self._new_executor(slot.progress_cells)

    def run(self, request: TrainingRequest, store: ModelStore) -> LocalRun:
        slot = next((slot for slot in self._slots if slot.run is None), None)
        if slot is None:  # the Trainer's gate makes this unreachable; belt and braces
            raise NoFreeSlot(f"all {self._slot_count} training slot(s) are busy")
        slot.progress_cells[0] = slot.progress_cells[1] = slot.progress_cells[2] = 0.0
        run = LocalRun(self, slot, request.name)
        try:
            future = slot.executor.submit(InChild("train_and_save"), request, store)
        except BrokenProcessPool:  # its process died while idle
            self.replace_process(slot)
            future = slot.executor.submit(InChild("train_and_save"), request, store)
        slot.run = run
        loop = asyncio.get_running_loop()

        def on_done(done: Future[dict[str, Any]]) -> None:
            # Runs in the executor's thread: hand over to the event loop, which owns the state.
            with contextlib.suppress(RuntimeError):  # the loop is closed: shutting down
                loop.call_soon_threadsafe(run.settle, done)

        future.add_done_callback(on_done)
        return run
