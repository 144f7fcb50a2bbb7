"""The fit's own overhead, per type (issue 45, item 12): `POST /fit` without held-out rows
against the same library's fit and save in this process, at 5,000 x 20, and where the
difference goes.

The server's answer says how long the worker trained, compiled and checked (its metadata);
the phases in between are timed here, in-process, on the same rows: the preparation (one-hot
and scaling for the types that have one), the training profile that monitoring compares
live rows with, and the signed save. What is left of the wall time is the request's own
path: the body parsed and encoded, the hop to the training process and back, the answer.
"""

from __future__ import annotations

import os
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import joblib
import numpy as np
import orjson
from threadpoolctl import threadpool_limits

from bench.harness import Spread, repeat, show, timed_post
from bench.training import FitCase
from server.algorithms import resolve
from server.ml.progress import NoProgress
from server.monitoring.profile import reference_profile
from server.store.files import ModelStore
from server.store.keys import SigningKey
from server.training.fit import fit_model
from server.training.request import TrainingRequest

TYPES = (
    "LogisticRegression",
    "RandomForestClassifier",
    "XGBClassifier",
    "LGBMClassifier",
    "CatBoostClassifier",
)
ROWS, FEATURES, REPEATS = 5_000, 20, 5


def in_process_fit_and_save(case: FitCase) -> float:
    """The floor: the same estimator, fitted and saved (joblib, fsync) in this process."""
    X, y = case.data()
    algorithm = resolve(case.model_type)
    estimator = algorithm.build(algorithm.effective_hyperparameters(case.hyperparameters))
    with tempfile.TemporaryDirectory() as directory, threadpool_limits(1):  # as the worker
        started = time.perf_counter()
        estimator.fit(X, y)
        with open(Path(directory) / "m.joblib", "wb") as file:
            joblib.dump(estimator, file)
            os.fsync(file.fileno())
        return time.perf_counter() - started


def _case(model_type: str) -> FitCase:
    return FitCase(f"{model_type} {ROWS:,} x {FEATURES}", model_type, {}, ROWS, FEATURES, REPEATS)


def _in_process_phases(case: FitCase, directory: Path) -> dict[str, float]:
    """Seconds of the phases the answer does not time, as the worker runs them."""
    X, y = case.data()
    algorithm = resolve(case.model_type)
    request = TrainingRequest(
        name="overhead",
        model_type=case.model_type,
        hyperparameters=algorithm.effective_hyperparameters(case.hyperparameters),
        X=X.astype(np.float64),
        y_encoded=y,
        classes=[0, 1],
    )
    columns = request.model_columns
    started = time.perf_counter()
    preparation = algorithm.preparation(X, columns.level_counts)
    if preparation is not None:
        preparation.transform(X)
    prepared = time.perf_counter()
    reference_profile(X, columns, y, request.classes)
    profiled = time.perf_counter()
    fitted = fit_model(request, NoProgress())
    store = ModelStore(directory, SigningKey(b"the bench's own key, 32 bytes or more"))
    saving = time.perf_counter()
    store.save("overhead", 1, fitted.bundle, fitted.metadata)
    return {
        "preparation": prepared - started,
        "profile": profiled - prepared,
        "save": time.perf_counter() - saving,
    }


async def _served(session: aiohttp.ClientSession, url: str, case: FitCase) -> dict[str, Spread]:
    walls, parts = [], []
    for i in range(case.repeats):
        name = f"overhead-{i}"
        started = time.perf_counter()
        await timed_post(session, f"{url}/fit", case.body(name), 201)
        walls.append(time.perf_counter() - started)
        async with session.get(f"{url}/models/{name}") as reply:
            metadata = orjson.loads(await reply.read())
        compiled = metadata["compiled"] or {}
        parts.append(
            (
                metadata["train_seconds"],
                compiled.get("seconds", 0.0) + (compiled.get("check_seconds") or 0.0),
            )
        )
        await session.post(f"{url}/remove", json={"config": {"name": name}})
    trains, compiles = zip(*parts, strict=True)
    return {
        "wall": Spread.of(walls),
        "train": Spread.of(trains),
        "compile": Spread.of(compiles),
        "rest": Spread.of([w - t - c for w, t, c in zip(walls, trains, compiles, strict=True)]),
    }


async def fit_overhead(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    rows, results = [], []
    for model_type in TYPES:
        case = _case(model_type)
        floor = repeat(partial(in_process_fit_and_save, case), case.repeats)
        served = await _served(session, url, case)
        with tempfile.TemporaryDirectory() as directory:
            phases = _in_process_phases(case, Path(directory))
        extra = served["wall"].median - floor.median
        rows.append([
            model_type, served["wall"].s(), floor.s(), f"{extra:+.3f}",
            f"{served['train'].median:.3f}", f"{served['compile'].median:.3f}",
            f"{phases['preparation']:.3f}", f"{phases['profile']:.3f}", f"{phases['save']:.3f}",
            f"{served['rest'].median - sum(phases.values()):.3f}",
        ])  # fmt: skip
        results.append({
            "model_type": model_type, "server_s": served["wall"].median,
            "floor_s": floor.median, "extra_s": extra,
            "train_s": served["train"].median, "compile_check_s": served["compile"].median,
            **{f"{k}_s": v for k, v in phases.items()},
            "request_path_s": served["rest"].median - sum(phases.values()),
        })  # fmt: skip
    show(
        f"The fit's own overhead at {ROWS:,} x {FEATURES}, no held-out rows (median of "
        f"{REPEATS}, s): POST /fit against the library's fit and save in-process, and where the "
        "difference goes",
        ["type", "POST /fit", "fit + save in-process", "extra", "training (worker)",
         "compile + check", "preparation", "profile", "signed save", "request path"],
        rows,
    )  # fmt: skip
    return results
