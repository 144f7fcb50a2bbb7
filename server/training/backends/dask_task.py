"""What runs on a Dask worker: the same fit as a local training process, reporting progress
through the cluster and stopping when the server asks.

The worker fits with `fit_model` (server.training.fit, shared by every backend) and sends
back the serialized model and its metadata: the server saves them under its own MODELS_PATH,
so no filesystem is shared. Progress and the worker's memory go to the server as events on
one topic (Worker.log_event), at most a few a second; at the same pace the fit checks a
`distributed.Event` that the server sets to stop it, and stops itself at its next iteration.
The scheduler and the workers need only the libraries of requirements.txt, at the server's
versions, and none of this project's code: a task travels as one call pickled by value
(`as_task`), which the workers run with cloudpickle's own `loads`. Dask pickles a task graph
by reference, and its scheduler unpickles the graph, so without this both would have to
import `server` (a stock `dask scheduler` failed with "No module named 'server'").
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import cloudpickle
import psutil
from distributed import Event, Worker, WorkerPlugin, get_worker
from threadpoolctl import threadpool_limits

from server.algorithms import preload
from server.inference.compiled.convert import preload_converters
from server.ml.progress import PHASES, TrainingStopped
from server.store.bundle import serialize
from server.training.fit import fit_model
from server.training.request import TrainingRequest

TOPIC = "model-server-training"
REPORT_SECONDS = 0.25


def send_code_by_value() -> None:
    """Pickle this project's functions and classes by value, wherever cloudpickle pickles
    them: the task calls (`as_task`), and the worker plugin below, which distributed itself
    pickles with cloudpickle because its module is registered by name."""
    import server

    cloudpickle.register_pickle_by_value(server)
    cloudpickle.register_pickle_by_value(sys.modules[__name__])


class _Call:
    """Unpickling it makes the call: a task whose function is cloudpickle's `loads` runs
    `function(*args)` on the worker, and the result is the task's."""

    def __init__(self, function: Callable[..., Any], *args: Any) -> None:
        self.function, self.args = function, args

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return self.function, self.args


def as_task(function: Callable[..., Any], *args: Any) -> tuple[Callable[[bytes], Any], bytes]:
    """(function, argument) for `Client.submit` that runs `function(*args)` on a worker that
    has only the libraries: `send_code_by_value` must have been called."""
    return cloudpickle.loads, cloudpickle.dumps(_Call(function, *args))


def stop_event_name(job_key: str) -> str:
    return f"{job_key}-stop"


class ClusterProgress:
    """A ProgressSink that reports through the scheduler and checks for a stop."""

    def __init__(self, job_key: str) -> None:
        self._worker = get_worker()
        self._job_key = job_key
        self._stop = Event(stop_event_name(job_key))
        self._process = psutil.Process(os.getpid())
        self._done, self._total, self._phase = 0, -1, PHASES[0]
        self._last_report = 0.0
        self.stopped = False

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_report < REPORT_SECONDS:
            return
        self._last_report = now
        self._worker.log_event(
            TOPIC,
            {
                "job": self._job_key,
                "worker": self._worker.address,
                "done": self._done,
                "total": self._total,
                "phase": self._phase,
                "rss": self._process.memory_info().rss,
            },
        )
        if self._stop.is_set():
            self.stopped = True
            raise TrainingStopped(self._job_key)

    def begin(self, total: int | None) -> None:
        self._total = total if total is not None else -1
        self._report(force=True)

    def advance(self, done: int) -> None:
        self._done = done
        self._report()

    def finish(self) -> None:
        if self._total > 0:
            self._done = self._total

    def phase(self, name: str) -> None:
        self._phase = name
        self._report(force=True)


class PreloadLibraries(WorkerPlugin):
    """Import the five libraries as each worker starts (or restarts), as a local training
    process does in its initializer: otherwise a worker's first fit of each type pays the
    import (measured: 4.9 s instead of 3.5 s for the medium forest)."""

    name = "model-server-preload"

    def setup(self, worker: Worker) -> None:
        preload()
        preload_converters()


def train_on_worker(
    request: TrainingRequest, job_key: str
) -> tuple[bytes, bytes | None, dict[str, Any]]:
    """The Dask task: fit on one thread, return the model's bytes, its compiled copy's and
    its metadata (the server signs and saves them: the key never leaves the server)."""
    progress = ClusterProgress(job_key)
    with threadpool_limits(limits=1):  # one training, one core, as in a local process
        fitted = fit_model(request, progress)
    return (*serialize(fitted.bundle), fitted.metadata)
