"""Trainer: every fit is a job, run by a backend behind the slot gate, watched for progress
and limits, and stopped on request.

The watcher is one task that wakes a few times a second: it copies each running fit's
progress (two shared doubles for the local backend) into its job, and stops any fit that has
run past its time limit or grown past the memory limit. Stopping is the same for a cancel
and for a limit: the backend kills what runs the fit, the files it may have begun are
removed, and only then are the slot and the name given back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from server.algorithms import resolve
from server.errors import (
    JobCancelled,
    JobFinished,
    JobNotFound,
    LimitExceeded,
    NoFreeSlot,
    ServiceError,
    WorkerCrashed,
)
from server.metrics import Metrics
from server.store.files import ModelStore
from server.training.backend import Run, TrainingBackend
from server.training.background import BackgroundTasks
from server.training.gate import SlotGate
from server.training.jobs import Job, JobBook, JobState
from server.training.limits import TrainingLimits
from server.training.request import TrainingRequest

logger = logging.getLogger(__name__)

AfterSave = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
# How often the watcher reads progress and checks limits: "a few events a second" at most.
WATCH_SECONDS = 0.2


@dataclass(eq=False)
class _Active:
    """A running job and what the Trainer needs to watch and stop it."""

    job: Job
    run: Run
    version: int
    model_info: dict[str, Any]  # what GET /models shows of it while it trains
    started: float = field(default_factory=time.monotonic)
    time_limit: tuple[float, str] | None = None
    after_save: AfterSave | None = None  # e.g. promote the new version, before success
    stopping: bool = False
    settled: bool = False
    candidate: bool = False


class Trainer:
    def __init__(
        self,
        backend: TrainingBackend,
        store: ModelStore,
        limits: TrainingLimits,
        history: int,
        retry_after_seconds: int,
        metrics: Metrics,
    ) -> None:
        self.backend = backend
        self._store = store
        self._limits = limits
        self._metrics = metrics
        self._gate = SlotGate(retry_after_seconds)
        self._retry_after = retry_after_seconds
        # When a user's /fit last found no free slot (None: since served): AutoML then
        # leaves the next slot that frees to them, for as long as Retry-After told them.
        self._user_refused_at: float | None = None
        self._book = JobBook(history)
        self._active: dict[str, _Active] = {}  # by job id
        self._tasks = BackgroundTasks()
        self._watcher: asyncio.Task[None] | None = None

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        await self.backend.start()
        self._watcher = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
        await self.backend.close()

    # -- state -------------------------------------------------------------------------------
    @property
    def slot_count(self) -> int:
        return self.backend.capacity()

    @property
    def busy(self) -> int:
        return self._gate.busy

    @property
    def free(self) -> int:
        return max(0, self.backend.capacity() - self._gate.busy)

    def reserved_for_user(self) -> bool:
        """A user's /fit was refused for want of a slot less than Retry-After ago."""
        refused = self._user_refused_at
        return refused is not None and time.monotonic() - refused < self._retry_after

    def is_training(self, name: str) -> bool:
        return self._gate.is_claimed(name)

    def training_version(self, name: str) -> int | None:
        """The version of `name` being trained, if one is."""
        return next((a.version for a in self._active.values() if a.job.name == name), None)

    def worker_pids(self) -> list[int]:
        return self.backend.worker_pids()

    def job(self, job_id: str) -> Job:
        job = self._book.get(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def jobs(self) -> list[Job]:
        return self._book.newest_first()

    def running(self) -> list[Job]:
        return [active.job for active in self._active.values()]

    def training(self) -> dict[str, dict[str, Any]]:
        """What is known of each model in training, by name (for GET /models)."""
        return {
            active.job.name: {
                **active.model_info,
                "job_id": active.job.id,
                "progress": active.job.progress(),
            }
            for active in self._active.values()
            if not active.candidate  # an AutoML candidate is no model anyone will see
        }

    # -- starting ----------------------------------------------------------------------------
    def start_job(
        self,
        request: TrainingRequest,
        max_seconds: float | None = None,
        after_save: AfterSave | None = None,
    ) -> Job:
        """Claim a slot and start the fit, or refuse at once (409 same name, 503 full).
        Synchronous: a caller that checked something just before (the name on disk) did it
        in the same step of the event loop. `after_save` runs once the model is saved, before
        the job succeeds, with its metadata; what it returns is the job's answer."""
        try:
            self._gate.claim(request.name, self.backend.capacity())
        except NoFreeSlot:
            self._metrics.training_ended(request.model_type, "rejected")
            if not request.candidate:
                self._user_refused_at = time.monotonic()
            raise
        if not request.candidate:
            self._user_refused_at = None
        try:
            run = self.backend.run(request, self._store)
        except BaseException:
            self._gate.release(request.name)
            raise
        job = Job(request.name, request.model_type, resolve(request.model_type).reports_progress)
        job.start()
        active = _Active(
            job,
            run,
            request.version,
            after_save=after_save,
            model_info={
                **request.describe(),
                "status": "training",
                "created_at": job.created_at.isoformat(),
            },
            time_limit=self._limits.time_limit(max_seconds),
            candidate=request.candidate,
        )
        self._active[job.id] = active
        self._book.add(job)
        self._book.forget_old()
        run.outcome.add_done_callback(lambda _: self._settle(active))
        return job

    async def wait(self, job: Job) -> dict[str, Any]:
        """The saved model's metadata once the job succeeds, or the error it ended with."""
        await job.until_finished()
        if job.state is JobState.SUCCEEDED and job.model is not None:
            return job.model
        if job.state is JobState.CANCELLED:
            raise JobCancelled(
                f"the training of '{job.name}' (job {job.id}) was cancelled; nothing was saved"
            )
        assert job.error is not None
        raise job.error

    # -- ending ------------------------------------------------------------------------------
    def _settle(self, active: _Active) -> None:
        """The backend's outcome is in: end the job with it (unless it is being stopped)."""
        outcome = active.run.outcome
        error = outcome.exception() if not outcome.cancelled() else WorkerCrashed("cancelled")
        if active.stopping or active.job.finished or active.settled:
            return  # the stop decides how the job ends; its error is seen all the same
        active.settled = True
        job = active.job
        if error is None:
            job.report(active.run.progress())
            if active.after_save is not None:
                self._tasks.spawn(self._succeed_after_save(active, outcome.result()))
                return
            job.succeed(outcome.result())
        elif isinstance(error, ServiceError):
            if isinstance(error, WorkerCrashed):  # it may have died mid-write
                self._store.discard(job.name, active.version)
            job.fail(error)
        else:  # an unexpected exception: report it, never lose the slot
            logger.error("training of '%s' failed unexpectedly: %r", job.name, error)
            job.fail(WorkerCrashed(f"the training of '{job.name}' failed: {error}"))
        self._forget(active)

    async def _succeed_after_save(self, active: _Active, metadata: dict[str, Any]) -> None:
        assert active.after_save is not None
        try:
            metadata = await active.after_save(metadata)
        finally:  # the model is saved whatever happened after: the job succeeds
            active.job.succeed(metadata)
            self._forget(active)

    def _forget(self, active: _Active) -> None:
        """The job has ended: count it, and give back its name and slot."""
        job = active.job
        seconds = job.elapsed_seconds() if job.state is JobState.SUCCEEDED else None
        self._metrics.training_ended(job.model_type, job.state.value, seconds)
        self._active.pop(job.id, None)
        self._gate.release(job.name)

    async def cancel(self, job_id: str) -> Job:
        job = self.job(job_id)
        active = self._active.get(job_id)
        if active is None:  # ended, and its slot given back
            raise JobFinished(job.nothing_to_cancel())
        await self._stop(active, None)
        if job.state is not JobState.CANCELLED:  # it ended first, or a limit stopped it
            raise JobFinished(job.nothing_to_cancel())
        return job

    async def _stop(self, active: _Active, error: ServiceError | None) -> None:
        """Kill the fit, clean its files, then end the job (cancelled, or failed with
        `error`) and free the slot and the name. A fit whose outcome is in has ended: its
        outcome stands, and its slot may already run another fit, which must not be touched."""
        if active.run.outcome.done():
            self._settle(active)  # no-op while another stop is under way
        if active.stopping:  # a cancel and a limit at once: wait for the first
            await active.job.until_finished()
            return
        if active.job.finished:
            return
        active.stopping = True
        try:
            await active.run.stop()
            await asyncio.to_thread(self._store.discard, active.job.name, active.version)
        finally:
            if error is None:
                active.job.cancel()
            else:
                active.job.fail(error)
            self._forget(active)

    # -- watching ----------------------------------------------------------------------------
    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(WATCH_SECONDS)
            for active in list(self._active.values()):
                try:
                    self._check(active)
                except Exception:  # never let one odd fit stop the watching of all
                    logger.exception("watching the training of '%s' failed", active.job.name)

    def _check(self, active: _Active) -> None:
        if active.stopping or active.run.outcome.done():
            return
        active.job.report(active.run.progress())
        hit = self._limits.exceeded(
            active.job.name, active.time_limit, active.started, active.run.memory_bytes
        )
        if hit is not None:
            limit, problem = hit
            logger.info("stopping the training of '%s': %s", active.job.name, problem)
            self._metrics.limit_hit(limit)
            self._tasks.spawn(self._stop(active, LimitExceeded(problem)))
