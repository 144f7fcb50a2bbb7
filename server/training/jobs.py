"""Jobs: what the server tells of every fit, running or finished.

    running ──► succeeded    the model is saved; `model` holds the /fit answer
            ├─► failed       `error` holds the status and detail a waiting /fit answers
            └─► cancelled    POST /jobs/{id}/cancel stopped it; nothing is on disk

A job changes only on the event loop. Each change bumps `version` and wakes whoever waits for
the next one (the SSE stream, a waiting /fit), so nobody polls a job in a loop.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from server.errors import ServiceError
from server.ml.progress import PHASES, Progress


class JobState(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(eq=False)
class Job:
    name: str
    model_type: str
    reports_progress: bool  # False: the library offers no measure, fraction stays null
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    state: JobState = JobState.RUNNING
    created_at: datetime = field(default_factory=_now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    iterations_done: float = 0.0
    iterations_total: float | None = None
    phase: str = PHASES[0]
    error: ServiceError | None = None
    model: dict[str, Any] | None = None
    version: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    @property
    def finished(self) -> bool:
        return self.state is not JobState.RUNNING

    # -- changes (event loop only) -------------------------------------------------------------
    def _touch(self) -> None:
        self.version += 1
        self._changed.set()
        self._changed = asyncio.Event()

    def start(self) -> None:
        self.started_at = _now()
        self._touch()

    def report(self, progress: Progress) -> None:
        seen = (self.iterations_done, self.iterations_total, self.phase)
        if tuple(progress) != seen:
            self.iterations_done, self.iterations_total, self.phase = progress
            self._touch()

    def succeed(self, model: dict[str, Any]) -> None:
        self.model = model
        if self.iterations_total is not None:
            self.iterations_done = self.iterations_total
        self._end(JobState.SUCCEEDED)

    def fail(self, error: ServiceError) -> None:
        self.error = error
        self._end(JobState.FAILED)

    def cancel(self) -> None:
        self._end(JobState.CANCELLED)

    def _end(self, state: JobState) -> None:
        self.state = state
        self.finished_at = _now()
        self._touch()

    async def next_change(self, seen: int) -> None:
        """Return once `version` is past `seen` (at once if it is already)."""
        if self.version == seen:
            await self._changed.wait()

    async def until_finished(self) -> None:
        while not self.finished:
            await self.next_change(self.version)

    # -- what the API shows ------------------------------------------------------------------
    @property
    def fraction(self) -> float | None:
        if not self.reports_progress:
            return None
        if self.state is JobState.SUCCEEDED:
            return 1.0
        if not self.iterations_total:
            return 0.0
        return min(1.0, self.iterations_done / self.iterations_total)

    def elapsed_seconds(self) -> float:
        end = self.finished_at or _now()
        return max(0.0, (end - (self.started_at or self.created_at)).total_seconds())

    def eta_seconds(self) -> float | None:
        fraction = self.fraction
        if self.state is JobState.SUCCEEDED and fraction is not None:
            return 0.0
        if fraction is None or self.finished or fraction <= 0:
            return None  # no measure, nothing left to wait for, or not measurable yet
        return round(self.elapsed_seconds() * (1 - fraction) / fraction, 1)

    def progress(self) -> dict[str, Any]:
        total = self.iterations_total
        fraction = self.fraction
        return {
            "fraction": None if fraction is None else round(fraction, 4),
            "iterations_done": int(self.iterations_done) if total is not None else None,
            "iterations_total": int(total) if total is not None else None,
        }

    def nothing_to_cancel(self) -> str:
        """What a cancel of this finished job answers."""
        error = self.error
        how = {
            JobState.SUCCEEDED: "succeeded: the model is saved (POST /remove deletes it)",
            JobState.FAILED: f"failed ({error.status_code if error else 500}): "
            f"{error.detail if error else ''}",
            JobState.CANCELLED: "been cancelled",
        }.get(self.state, self.state.value)
        return f"job '{self.id}' for '{self.name}' has already {how}; nothing to cancel"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "model_type": self.model_type,
            "state": self.state.value,
            "phase": self.phase if not self.finished else None,
            "progress": self.progress(),
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "elapsed_seconds": round(self.elapsed_seconds(), 2),
            "eta_seconds": self.eta_seconds(),
            "error": (
                {"status": self.error.status_code, "detail": self.error.detail}
                if self.error is not None
                else None
            ),
            "model": self.model,
        }


class JobBook:
    """Every running job, and the last `history` finished ones (in memory only)."""

    def __init__(self, history: int) -> None:
        self._history = history
        self._jobs: OrderedDict[str, Job] = OrderedDict()  # oldest first

    def add(self, job: Job) -> None:
        self._jobs[job.id] = job

    def get(self, job_id: str) -> Job | None:
        return self._jobs.get(job_id)

    def newest_first(self) -> list[Job]:
        return list(reversed(self._jobs.values()))

    def running(self) -> list[Job]:
        return [job for job in self._jobs.values() if not job.finished]

    def forget_old(self) -> None:
        """Drop the oldest finished jobs beyond `history`; running ones always stay."""
        finished = [job_id for job_id, job in self._jobs.items() if job.finished]
        for job_id in finished[: max(0, len(finished) - self._history)]:
            del self._jobs[job_id]
