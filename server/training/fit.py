"""The fit every backend shares: fit one estimator on one core with progress, score it on the
held-out rows, compile it and check the copy, and build its metadata. Nothing here touches
the event loop, a process pool or a cluster; errors are `InvalidInput` carrying the
library's own message, which survives pickling."""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import numpy as np

from server.algorithms import Algorithm, resolve
from server.algorithms.preparation import Preparation, input_domains
from server.errors import InvalidInput
from server.inference.compiled.runtimes import NativeRuntime
from server.ml.curves import pictures
from server.ml.explanations import training_means
from server.ml.messages import library_message
from server.ml.progress import EarlyStopping, ProgressSink, TrainingCall, TrainingStopped
from server.ml.scoring import holdout, scores
from server.monitoring.profile import reference_profile
from server.training.compiling import check_rows, compile_checked
from server.training.costs import predict_cost
from server.training.importance import feature_importance, importance_budget
from server.training.request import FittedModel, TrainingRequest

MAX_MESSAGE_CHARS = 2000
MAX_WARNINGS, MAX_WARNING_CHARS = 10, 500


def fit_model(request: TrainingRequest, progress: ProgressSink) -> FittedModel:
    """Fit on one core, reporting progress; the same on every backend."""
    algorithm = resolve(request.model_type)
    started_wall, started_cpu = time.perf_counter(), time.process_time()
    columns = request.model_columns
    codes, y = request.X, request.y_encoded
    train = held_out = None
    if request.holdout is not None:
        train, held_out = holdout(len(codes), y, request.holdout.fraction, request.holdout.seed)
        codes, y = codes[train], y[train]
    levels = columns.level_counts
    preparation = algorithm.preparation(codes, levels)
    prepare = preparation.transform if preparation is not None else _as_they_are
    # The library's own categorical support where the type has no preparation of its own.
    categorical = columns.categorical if preparation is None else None
    X = prepare(codes)
    rounds = request.early_stopping_rounds
    stopping = None
    if held_out is not None and rounds is not None:
        stopping = EarlyStopping(
            (prepare(request.X[held_out]), request.y_encoded[held_out]), rounds
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")  # each once in the answer, never in a log only
            estimator = algorithm.build(request.hyperparameters)
            algorithm.train(estimator, TrainingCall(X, y, progress, stopping, categorical))
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
    said = library_warnings(caught)
    if said:
        metadata["warnings"] = said
    if preparation is not None:
        metadata["preparation"] = preparation.describe()
    metadata["profile"] = reference_profile(codes, columns, y, request.classes)
    bundle = {
        "estimator": estimator,
        "classes": request.classes,
        "model_type": algorithm.name,
        "n_features": len(columns),  # CatBoost's n_features_in_ is not reliable
        "feature_names": columns.feature_names,
    }
    if algorithm.explained_against_means:
        metadata["training_means"] = training_means(X)
    if held_out is not None:
        progress.phase("explaining")
        metadata["validation"] = _validate(
            estimator, algorithm, request, held_out, prepare, preparation,
            metadata.get("training_means"), train_seconds,
        )  # fmt: skip
    if request.compile:
        counts = [len(columns.columns[i].levels) for i in columns.categorical]
        rows = prepare(check_rows(codes, columns.categorical, counts))
        domains = input_domains(levels, preparation)
        compiled, serving = compile_checked(algorithm, estimator, rows, progress, domains)
        bundle.update(onnx=compiled.onnx, onnx_error=compiled.reason, check_rows=rows)
        metadata["compiled"] = compiled.describe()
        metadata["serving"] = serving
        if request.candidate and held_out is not None:
            scored = prepare(request.X[held_out])
            metadata["predict_us_per_row"] = predict_cost(
                estimator, algorithm, compiled, serving, scored
            )
    progress.phase("saving")
    return FittedModel(bundle, metadata)


def library_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    """What the library warned about while training (a model that did not converge), each
    message once, the first MAX_WARNINGS."""
    said = dict.fromkeys(
        f"{item.category.__name__}: {library_message(str(item.message))}"[:MAX_WARNING_CHARS]
        for item in caught
    )
    return list(said)[:MAX_WARNINGS]


def _as_they_are(X: np.ndarray) -> np.ndarray:
    return X


def refuse_wrong_width(
    algorithm: Algorithm, estimator: Any, X: np.ndarray, classes: list[Any]
) -> None:
    """A model must answer one probability per class: a hyperparameter can make a booster
    answer another number (a class count the labels contradict), and serve nothing sound."""
    width = NativeRuntime(estimator, algorithm.predict_kwargs, algorithm).probabilities(X).shape[1]
    if width != len(classes):
        raise InvalidInput(
            f"{algorithm.name} trained a model that answers {width} probabilities for the "
            f"{len(classes)} classes of y: check the hyperparameters that set the objective "
            "or the number of classes"
        )


def _validate(
    estimator: Any,
    algorithm: Algorithm,
    request: TrainingRequest,
    held_out: np.ndarray,
    prepare: Callable[[np.ndarray], np.ndarray],
    preparation: Preparation | None,
    means: list[float] | None,
    train_seconds: float,
) -> dict[str, Any]:
    """The held-out rows' scores and the features' importance on them, within a budget of
    the training time (after the training time is taken: not part of it)."""
    assert request.holdout is not None
    native = NativeRuntime(estimator, algorithm.predict_kwargs, algorithm)
    X, y_true = prepare(request.X[held_out]), request.y_encoded[held_out]
    probabilities = native.probabilities(X)
    groups = preparation.groups() if preparation is not None else None
    importance, explained = feature_importance(
        algorithm.name, estimator, X, len(request.classes), means,
        request.model_columns.names, importance_budget(train_seconds), groups,
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
