"""Progress from inside a fit: how far each library has got, written where the server reads it.

A fit reports to a `ProgressSink`: `begin(total)` once, then `advance(done)` after each
iteration (boosting round, or chunk of trees), and `phase(...)` as the job moves from training
to compiling the model, checking the compiled copy and saving (`PHASES`). The local backend's
sink writes three doubles into shared memory that the server reads a few times a second, so an
iteration costs one store, never a message through the event loop.

The hooks are built here, inside the training process, so nothing unpicklable crosses a
process boundary, and `fit_reporting_progress` takes them off the estimator before it is
saved: a saved model carries no reference to this module.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np

# RandomForest grows in chunks sized to take about this long: a few updates a second, and
# the per-chunk cost (checking X again) stays a small share of the fit (see the
# earlier performance runs, docs/performance-history.md).
FOREST_CHUNK_SECONDS = 0.25
# CatBoost's default number of iterations, when none of its aliases is set.
CATBOOST_DEFAULT_ITERATIONS = 1000
XGBOOST_DEFAULT_ROUNDS = 100
CATBOOST_ITERATION_KEYS = ("iterations", "n_estimators", "num_boost_round", "num_trees")


# What a job does, in order. Only training has a measure of how far it has got: the
# converters and the check offer none.
PHASES = ("training", "explaining", "compiling", "checking", "saving")


class Progress(NamedTuple):
    done: float
    total: float | None  # None: the library offers no measure, or not begun
    phase: str


@dataclass(frozen=True)
class EarlyStopping:
    """Boosters stop once `rounds` rounds in a row did not improve on the held-out rows
    (AutoML's candidates); the model keeps its best round."""

    validation: tuple[np.ndarray, np.ndarray]  # rows, and their labels as indices
    rounds: int


class TrainingStopped(Exception):
    """Raised from a progress hook when the server asked the fit to stop (cluster backends:
    they can't kill a task, so the fit stops itself at its next iteration)."""


class ProgressSink(Protocol):
    stopped: bool  # the server asked this fit to stop; the hook has raised TrainingStopped

    def begin(self, total: int | None) -> None:
        """The fit plans `total` iterations (None: the library offers no measure)."""

    def advance(self, done: int) -> None:
        """`done` iterations of `total` are finished."""

    def finish(self) -> None:
        """The fit is over: everything planned is done (boosting may stop early)."""

    def phase(self, name: str) -> None:
        """The job has moved on to `name`, one of PHASES."""


class NoProgress:
    stopped = False

    def phase(self, name: str) -> None:
        pass

    def begin(self, total: int | None) -> None:
        pass

    def advance(self, done: int) -> None:
        pass

    def finish(self) -> None:
        pass


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


# -- the hooks, one per library ----------------------------------------------------------------
class _XGBoostHook:
    """An xgboost TrainingCallback, made at fit time (xgboost is imported by then)."""

    @staticmethod
    def make(sink: ProgressSink) -> Any:
        from xgboost.callback import TrainingCallback

        class ReportRounds(TrainingCallback):
            def after_iteration(self, model: Any, epoch: int, evals_log: Any) -> bool:
                sink.advance(epoch + 1)
                return False  # never stop early on our account

        return ReportRounds()


class _CatBoostHook:
    def __init__(self, sink: ProgressSink) -> None:
        self._sink = sink

    def after_iteration(self, info: Any) -> bool:
        self._sink.advance(int(info.iteration))  # 1-based
        return True  # go on


def planned(count: Any) -> int | None:
    """A count of iterations to show progress against, or None. Only a whole number of at
    least 1 is one: anything else is for the library to accept or refuse with its own words
    (`int("ten")` or `int(2.5)` here would answer for it)."""
    if isinstance(count, bool) or not isinstance(count, int | np.integer) or count < 1:
        return None
    return int(count)


def _catboost_iterations(estimator: Any) -> int | None:
    params = estimator.get_params()  # only what was set
    for key in CATBOOST_ITERATION_KEYS:
        if params.get(key) is not None:
            return planned(params[key])
    return CATBOOST_DEFAULT_ITERATIONS


def _fit_forest_in_chunks(estimator: Any, X: np.ndarray, y: np.ndarray, sink: ProgressSink) -> None:
    """Grow the forest with warm_start, a chunk of trees at a time. scikit-learn draws each
    new tree's seed from the same random stream as a single fit would, so for an integer
    random_state the forest is the same (tests/test_jobs.py proves it)."""
    # scikit-learn checks its parameters in fit; growing in chunks would skip that for a
    # count below 1 (and save a forest of no trees), so check them first, in its own words.
    estimator._validate_params()
    params = estimator.get_params()
    total, wanted_oob = int(params["n_estimators"]), params["oob_score"]
    sink.begin(total)
    # Intermediate chunks skip the out-of-bag score; the last one computes it over all trees.
    estimator.set_params(warm_start=True, oob_score=False)
    grown, chunk = 0, 1
    try:
        while grown < total:
            target = min(total, grown + chunk)
            if target == total:
                estimator.set_params(oob_score=wanted_oob)
            started = time.perf_counter()
            estimator.set_params(n_estimators=target)
            estimator.fit(X, y)
            per_tree = (time.perf_counter() - started) / (target - grown)
            grown = target
            sink.advance(grown)
            chunk = max(1, round(FOREST_CHUNK_SECONDS / max(per_tree, 1e-6)))
    finally:
        estimator.set_params(warm_start=params["warm_start"], n_estimators=total)


def fit_reporting_progress(
    model_type: str,
    estimator: Any,
    X: np.ndarray,
    y: np.ndarray,
    sink: ProgressSink,
    stopping: EarlyStopping | None = None,
) -> None:
    """Fit `estimator` on X, y, reporting to `sink` where the library allows it; a booster
    stops early on `stopping`'s rows if given."""
    if model_type == "RandomForestClassifier":
        _fit_forest_in_chunks(estimator, X, y, sink)
    elif model_type == "XGBClassifier":
        params = estimator.get_params()
        count = params.get("n_estimators")
        sink.begin(XGBOOST_DEFAULT_ROUNDS if count is None else planned(count))
        user_callbacks = params.get("callbacks")
        estimator.set_params(callbacks=[*(user_callbacks or []), _XGBoostHook.make(sink)])
        extra: dict[str, Any] = {}
        if stopping is not None:
            estimator.set_params(early_stopping_rounds=stopping.rounds)
            extra = {"eval_set": [stopping.validation], "verbose": False}
        try:
            estimator.fit(X, y, **extra)
        finally:
            estimator.set_params(callbacks=user_callbacks)
    elif model_type == "LGBMClassifier":
        sink.begin(planned(estimator.get_params()["n_estimators"]))
        callbacks = [lambda env: sink.advance(env.iteration + 1)]
        extra = {}
        if stopping is not None:
            import lightgbm  # imported here: only a LightGBM fit needs it

            callbacks.append(lightgbm.early_stopping(stopping.rounds, verbose=False))
            extra = {"eval_X": (stopping.validation[0],), "eval_y": (stopping.validation[1],)}
        estimator.fit(X, y, callbacks=callbacks, **extra)
    elif model_type == "CatBoostClassifier":
        sink.begin(_catboost_iterations(estimator))
        extra = {}
        if stopping is not None:
            extra = {"eval_set": stopping.validation, "early_stopping_rounds": stopping.rounds}
        estimator.fit(X, y, callbacks=[_CatBoostHook(sink)], **extra)
    else:  # LogisticRegression: lbfgs offers no per-iteration hook
        sink.begin(None)
        estimator.fit(X, y)
    sink.finish()
