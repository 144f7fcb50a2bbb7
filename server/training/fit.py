"""The fit every backend shares: fit one estimator on one core with progress, score it on the
held-out rows, compile it and check the copy, and build its metadata. Nothing here touches
the event loop, a process pool or a cluster; errors are `InvalidInput` carrying the
library's own message, which survives pickling."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

import numpy as np

from server.algorithms import Algorithm, resolve
from server.errors import InvalidInput
from server.inference.compiled.choice import checked, record, with_routing
from server.inference.compiled.convert import Compiled, compile_estimator
from server.inference.compiled.runtimes import NativeRuntime
from server.ml.curves import pictures
from server.ml.explanations import column_names, training_means
from server.ml.messages import library_message
from server.ml.progress import EarlyStopping, ProgressSink, TrainingStopped
from server.ml.scoring import holdout, scores
from server.training.costs import predict_cost
from server.training.importance import feature_importance, importance_budget
from server.training.request import FittedModel, TrainingRequest

MAX_MESSAGE_CHARS = 2000


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
        algorithm.train(estimator, X, y, progress, stopping)
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
    if algorithm.name == "LogisticRegression":  # what its explanations are against
        metadata["training_means"] = training_means(X)
    if request.holdout is not None:
        progress.phase("explaining")
        metadata["validation"] = _validate(
            estimator, algorithm, request, held_out, metadata.get("training_means"), train_seconds
        )
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
    compiled = compile_estimator(algorithm, estimator, int(X.shape[1]))
    rows = check_rows(X)
    serving = None
    if compiled.onnx is not None:
        progress.phase("checking")
        started = time.perf_counter()
        native = NativeRuntime(estimator, algorithm.predict_kwargs)
        choice = checked(native, compiled.onnx, rows, algorithm)
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
    estimator: Any,
    algorithm: Algorithm,
    request: TrainingRequest,
    held_out: np.ndarray,
    means: list[float] | None,
    train_seconds: float,
) -> dict[str, Any]:
    """The held-out rows' scores and the features' importance on them, within a budget of
    the training time (after the training time is taken: not part of it)."""
    assert request.holdout is not None
    native = NativeRuntime(estimator, algorithm.predict_kwargs)
    X, y_true = request.X[held_out], request.y_encoded[held_out]
    probabilities = native.probabilities(X)
    names = column_names(request.feature_names, X.shape[1])
    importance, explained = feature_importance(
        algorithm.name, estimator, X, len(request.classes), means, names,
        importance_budget(train_seconds),
    )  # fmt: skip
    return {
        "fraction": request.holdout.fraction,
        "seed": request.holdout.seed,
        "n_samples": len(held_out),
        "scores": scores(y_true, probabilities),
        **pictures(y_true, probabilities, native.indices(X)),
        "feature_importance": importance,
        "importance_rows": explained,
    }
