"""What runs inside a training process: fit one estimator on one core, then save it.

Nothing here touches the event loop or FastAPI; the server sends a `TrainingRequest` and
gets back the model's metadata, or an `InvalidInput` / `StorageFailed` carrying the original
message (both plain exceptions with one string argument, so they survive pickling).
`fit_model` is the part every backend shares; `train_and_save` is the local backend's task.
"""

import os

# Set before numpy, OpenBLAS or OpenMP load in this process: their pools read these once.
for _variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import signal  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from datetime import UTC, datetime  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from server.algorithms import Algorithm, preload, resolve  # noqa: E402
from server.errors import InvalidInput, StorageFailed  # noqa: E402
from server.inference.compiled.choice import checked, record, with_routing  # noqa: E402
from server.inference.compiled.convert import (  # noqa: E402
    Compiled,
    compile_estimator,
    preload_converters,
)
from server.inference.compiled.runtimes import NativeRuntime  # noqa: E402
from server.libc import libc_function  # noqa: E402
from server.ml.messages import library_message  # noqa: E402
from server.pictures import pictures  # noqa: E402
from server.scoring import holdout, scores  # noqa: E402
from server.store.bundle import serialize  # noqa: E402
from server.store.files import ModelStore  # noqa: E402
from server.training.costs import predict_cost  # noqa: E402
from server.training.progress import (  # noqa: E402
    EarlyStopping,
    NoProgress,
    ProgressSink,
    SharedProgress,
    TrainingStopped,
    fit_reporting_progress,
)

PARENT_POLL_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # from <sys/prctl.h>
MAX_MESSAGE_CHARS = 2000


@dataclass(frozen=True)
class Holdout:
    """Score the model on a stratified share of the rows, held out of its training."""

    fraction: float
    seed: int


@dataclass(frozen=True)
class TrainingRequest:
    name: str
    model_type: str
    hyperparameters: dict[str, Any]  # effective: validated, threads pinned
    X: np.ndarray  # float64, NaN where a value is missing
    y_encoded: np.ndarray  # indices into `classes`
    classes: list[Any]  # the original labels, sorted
    feature_names: list[str] | None = None  # a file's columns
    holdout: Holdout | None = None
    compile: bool = True  # convert to ONNX after the fit (INFERENCE_RUNTIME=auto)
    version: int = 1  # of the name: saved as NAME/<version>.joblib
    # An AutoML candidate (server.automl): not saved but sent back, with its predict cost.
    candidate: bool = False
    early_stopping_rounds: int | None = None  # boosters, on the held-out rows

    def describe(self) -> dict[str, Any]:
        """What is known of the model before it is trained (the start of its metadata)."""
        return {
            "name": self.name,
            "version": self.version,
            "model_type": self.model_type,
            "hyperparameters": self.hyperparameters,
            "n_samples": int(self.X.shape[0]),
            "n_features": int(self.X.shape[1]),
            "classes": self.classes,
            "feature_names": self.feature_names,
        }


@dataclass(frozen=True)
class FittedModel:
    bundle: dict[str, Any]  # what the store pickles: estimator, classes, type, width
    metadata: dict[str, Any]  # the /fit answer, without size_bytes


# This process's slot: where its fits report progress (set by `initialize`).
_progress_cells: Any = None


def initialize(
    parent_pid: int,
    nice: int = 0,
    idle_priority: bool = False,
    progress_cells: Any = None,
    cores: frozenset[int] | None = None,
) -> None:
    """Process initializer: die with the parent (first, so that no window is left open),
    keep off the server's core (server.training.cores) or yield the CPU to the server when
    they share one, preload the libraries and pin their threads."""
    global _progress_cells
    _progress_cells = progress_cells
    _die_with_parent(parent_pid)
    if cores is not None:
        os.sched_setaffinity(0, cores)
    os.nice(nice)
    if idle_priority and hasattr(os, "SCHED_IDLE"):
        # Linux: run only on CPU time nobody else wants. A request then preempts a training
        # at once, instead of waiting for the scheduler to take the core from a niced one.
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    preload()
    preload_converters()
    threadpool_limits(limits=1)
    # A file-size limit (ulimit -f) then fails the write with EFBIG, which the fit reports,
    # instead of killing this process.
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)


def _die_with_parent(parent_pid: int) -> None:
    """If the server dies, even by SIGKILL, stop at once rather than finish and save a model
    nobody will be told about. Linux kills us itself (PR_SET_PDEATHSIG), even while a
    library holds the GIL; a thread that watches for re-parenting is the portable fallback."""
    prctl = libc_function("prctl")
    if prctl is not None:
        prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()


def _exit_when_orphaned(parent_pid: int) -> None:
    while os.getppid() == parent_pid:  # also covers a parent that died before prctl
        time.sleep(PARENT_POLL_SECONDS)
    os._exit(1)


def warm_up() -> int:
    """A no-op task: submitting it starts the process, whose initializer does the rest."""
    return os.getpid()


def fit_model(request: TrainingRequest, progress: ProgressSink) -> FittedModel:
    """Fit on one core, reporting progress; the same on every backend."""
    algorithm = resolve(request.model_type)
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    X, y = request.X, request.y_encoded
    if request.holdout is not None:
        train, held_out = holdout(len(X), y, request.holdout.fraction, request.holdout.seed)
        X, y = X[train], y[train]
    rounds = request.early_stopping_rounds
    stopping = None
    if request.holdout is not None and rounds is not None:
        stopping = EarlyStopping((request.X[held_out], request.y_encoded[held_out]), rounds)
    try:
        estimator = algorithm.build(request.hyperparameters)
        fit_reporting_progress(algorithm.name, estimator, X, y, progress, stopping)
    except Exception as error:  # the estimator refused its parameters or the data
        if progress.stopped:  # our own stop, whatever the library wrapped it in
            raise TrainingStopped(request.name) from None
        message = (
            f"{algorithm.name} refused to train '{request.name}': {type(error).__name__}: "
            f"{library_message(str(error))}"
        )
        raise InvalidInput(message[:MAX_MESSAGE_CHARS]) from None
    refuse_wrong_width(algorithm, estimator, X[:1], request.classes)
    train_seconds = time.perf_counter() - started_wall
    cpu_seconds = time.process_time() - started_cpu

    metadata = {
        **request.describe(),
        "validation": None,
        "compiled": None,
        "status": "trained",
        "train_seconds": round(train_seconds, 4),
        "train_cpu_seconds": round(cpu_seconds, 4),
        "created_at": datetime.now(UTC).isoformat(),
    }
    bundle = {
        "estimator": estimator,
        "classes": request.classes,
        "model_type": algorithm.name,
        "n_features": int(request.X.shape[1]),  # CatBoost's n_features_in_ is not reliable
        "feature_names": request.feature_names,
    }
    if request.holdout is not None:
        metadata["validation"] = _validate(estimator, algorithm, request, held_out)
    if request.compile:
        compiled, rows, serving = _compile(algorithm, estimator, X, progress)
        bundle.update(onnx=compiled.onnx, onnx_error=compiled.reason, check_rows=rows)
        metadata["compiled"] = compiled.describe()
        metadata["serving"] = serving
        if request.candidate and request.holdout is not None:
            scored = request.X[held_out]
            metadata["predict_us_per_row"] = predict_cost(
                estimator, algorithm, compiled, serving, scored
            )
    progress.phase("saving")
    return FittedModel(bundle, metadata)


def refuse_wrong_width(
    algorithm: Algorithm, estimator: Any, X: np.ndarray, classes: list[Any]
) -> None:
    """A model must answer one probability per class: a hyperparameter can make a booster
    answer another number (a class count the labels contradict), and serve nothing sound."""
    width = NativeRuntime(estimator, algorithm.predict_kwargs).probabilities(X).shape[1]
    if width != len(classes):
        raise InvalidInput(
            f"{algorithm.name} trained a model that answers {width} probabilities for the "
            f"{len(classes)} classes of y: check the hyperparameters that set the objective "
            "or the number of classes"
        )


def _compile(
    algorithm: Algorithm, estimator: Any, X: np.ndarray, progress: ProgressSink
) -> tuple[Compiled, np.ndarray, dict[str, Any] | None]:
    """The ONNX copy, kept only if it answers as the estimator does (the check at load, run
    here too, so that a copy that can't serve is neither stored nor waited for), the
    training rows kept for the check at load, and the check's verdict (a server on the same
    platform serves the copy on it, without reading the estimator)."""
    progress.phase("compiling")
    compiled = compile_estimator(algorithm.name, estimator, int(X.shape[1]))
    rows = check_rows(X)
    serving = None
    if compiled.onnx is not None:
        progress.phase("checking")
        started = time.perf_counter()
        native = NativeRuntime(estimator, algorithm.predict_kwargs)
        choice = checked(native, compiled.onnx, rows, algorithm.handles_missing)
        failure = None if choice.compiled is not None else choice.detail
        compiled = compiled.checked(failure, time.perf_counter() - started)
        serving = record(with_routing(choice, rows))
    return compiled, rows, serving


CHECK_ROWS = 256
CHECK_ROWS_WITH_MISSING = 64


def check_rows(X: np.ndarray) -> np.ndarray:
    """Training rows kept with the model for the compiled model's check at load: a random
    sample, with up to a quarter of rows that have missing values where the data has any."""
    rng = np.random.default_rng(0)
    has_missing = np.isnan(X).any(axis=1)
    with_missing = np.flatnonzero(has_missing)
    complete = np.flatnonzero(~has_missing)
    take_complete = min(len(complete), CHECK_ROWS - min(len(with_missing), CHECK_ROWS_WITH_MISSING))
    take_missing = min(len(with_missing), CHECK_ROWS - take_complete)
    chosen = np.concatenate(
        [
            rng.choice(complete, take_complete, replace=False),
            rng.choice(with_missing, take_missing, replace=False),
        ]
    )
    return np.array(X[np.sort(chosen)], dtype=np.float64)


def _validate(
    estimator: Any, algorithm: Algorithm, request: TrainingRequest, held_out: np.ndarray
) -> dict[str, Any]:
    """The held-out rows' scores (after the training time is taken: not part of it)."""
    assert request.holdout is not None
    native = NativeRuntime(estimator, algorithm.predict_kwargs)
    X, y_true = request.X[held_out], request.y_encoded[held_out]
    probabilities = native.probabilities(X)
    return {
        "fraction": request.holdout.fraction,
        "seed": request.holdout.seed,
        "n_samples": len(held_out),
        "scores": scores(y_true, probabilities),
        **pictures(y_true, probabilities, native.indices(X)),
    }


def train_and_save(request: TrainingRequest, store: ModelStore) -> dict[str, Any]:
    """The local backend's task: fit, save atomically, return the metadata (the /fit answer)."""
    progress = SharedProgress(_progress_cells) if _progress_cells is not None else NoProgress()
    fitted = fit_model(request, progress)
    if request.candidate:  # kept by the search in memory: only its winner is ever saved
        return {"metadata": fitted.metadata, "model": serialize(fitted.bundle)}
    try:
        return store.save(request.name, request.version, fitted.bundle, fitted.metadata)
    except OSError as error:
        raise StorageFailed(f"model '{request.name}' could not be saved: {error}") from None
