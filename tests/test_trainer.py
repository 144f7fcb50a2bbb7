"""The Trainer against a stand-in backend, for interleavings a real process can't be timed
into: a stop that arrives after the fit's outcome is in."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from server.errors import LimitExceeded
from server.metrics import NoMetrics
from server.ml.progress import Progress
from server.store.files import ModelStore
from server.training.backend import Run, TrainingBackend
from server.training.jobs import JobState
from server.training.request import TrainingRequest
from server.training.trainer import Trainer, TrainingLimits
from tests.helpers import KEY

pytestmark = pytest.mark.anyio


class InstantRun(Run):
    def __init__(self) -> None:
        self.outcome = asyncio.get_running_loop().create_future()
        self.stops = 0

    def progress(self) -> Progress:
        return Progress(0.0, None, "training")

    def memory_bytes(self) -> int | None:
        return None

    async def stop(self) -> None:
        self.stops += 1


class StandInBackend(TrainingBackend):
    name = "local"

    def __init__(self) -> None:
        self.runs: list[InstantRun] = []

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    def capacity(self) -> int:
        return 1

    def run(self, request: TrainingRequest, models_path: str) -> InstantRun:
        self.runs.append(InstantRun())
        return self.runs[-1]


def request(name: str) -> TrainingRequest:
    X = np.zeros((4, 2))
    return TrainingRequest(name, "XGBClassifier", {}, X, np.array([0, 1, 0, 1]), [0, 1])


async def test_a_stop_after_the_outcome_leaves_the_job_and_the_backend_alone(
    tmp_path: Path,
) -> None:
    backend = StandInBackend()
    trainer = Trainer(backend, ModelStore(tmp_path, KEY), TrainingLimits(), 100, 5, NoMetrics())
    job = trainer.start_job(request("first"))
    [run] = backend.runs
    active = trainer._active[job.id]  # the watcher decided on a limit, and spawned the stop
    run.outcome.set_result({"name": "first"})  # ... but the fit finished before it ran
    await trainer._stop(active, LimitExceeded("too long"))
    assert job.state is JobState.SUCCEEDED
    assert job.model == {"name": "first"}
    assert run.stops == 0  # the slot may already run another fit: never killed
    assert trainer.busy == 0
    # The slot is free: the next fit starts, and a cancel of the first one is a 409.
    trainer.start_job(request("second"))
    with pytest.raises(Exception, match="has already succeeded"):
        await trainer.cancel(job.id)


async def test_a_stop_of_a_running_fit_stops_it_once(tmp_path: Path) -> None:
    backend = StandInBackend()
    trainer = Trainer(backend, ModelStore(tmp_path, KEY), TrainingLimits(), 100, 5, NoMetrics())
    job = trainer.start_job(request("running"))
    [run] = backend.runs
    cancelled = await trainer.cancel(job.id)
    assert cancelled.state is JobState.CANCELLED
    assert run.stops == 1
    assert trainer.busy == 0
    assert not trainer.is_training("running")
