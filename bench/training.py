"""Fit overhead, ingest and parallel training, each against its in-process floor."""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import joblib
import numpy as np
import orjson
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from bench.harness import Spread, repeat, show, timed_post
from server.algorithms import resolve


@dataclass(frozen=True)
class FitCase:
    label: str
    model_type: str
    hyperparameters: dict[str, Any]
    n_samples: int
    n_features: int
    repeats: int

    def data(self) -> tuple[np.ndarray, np.ndarray]:
        X, y = make_classification(
            n_samples=self.n_samples, n_features=self.n_features, random_state=0
        )
        return X, y

    def body(self, name: str) -> bytes:
        X, y = self.data()
        config = {
            "name": name,
            "model_type": self.model_type,
            "hyperparameters": self.hyperparameters,
        }
        return orjson.dumps({"X": X, "y": y, "config": config}, option=orjson.OPT_SERIALIZE_NUMPY)


CASES = [
    FitCase("tiny: LogisticRegression 1k x 10", "LogisticRegression", {}, 1_000, 10, 7),
    FitCase(
        "medium: RandomForest 20k x 20",
        "RandomForestClassifier",
        {"n_estimators": 50},
        20_000,
        20,
        3,
    ),
    FitCase("big payload: LogisticRegression 100k x 20", "LogisticRegression", {}, 100_000, 20, 3),
]


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


async def server_fit(
    session: aiohttp.ClientSession, url: str, case: FitCase
) -> tuple[Spread, float]:
    """The /fit wall times, and the median time of the ONNX conversion inside them."""
    bodies = [case.body(f"overhead-{i}") for i in range(case.repeats)]  # encoded beforehand
    times = [await timed_post(session, f"{url}/fit", body, 201) for body in bodies]
    compile_seconds = []
    for i in range(case.repeats):
        async with session.get(f"{url}/models/overhead-{i}") as reply:
            compiled = (await reply.json())["compiled"]
        compile_seconds.append(compiled["seconds"] if compiled else 0.0)
        await session.post(f"{url}/remove", json={"config": {"name": f"overhead-{i}"}})
    return Spread.of(times), float(np.median(compile_seconds))


async def fit_overhead(session: aiohttp.ClientSession, url: str) -> list[dict[str, Any]]:
    rows, results = [], []
    for case in CASES:
        floor = repeat(lambda c=case: in_process_fit_and_save(c), case.repeats)
        served, compiling = await server_fit(session, url, case)
        ratio = served.median / floor.median
        without = (served.median - compiling) / floor.median
        rows.append(
            [
                case.label,
                served.s(),
                f"{compiling:.3f}",
                floor.s(),
                f"{ratio:.3f}",
                f"{without:.3f}",
            ]
        )
        results.append(
            {
                "case": case.label,
                "server_s": served.median,
                "compile_s": compiling,
                "floor_s": floor.median,
                "ratio": ratio,
                "ratio_without_compile": without,
            }
        )
    show(
        "Fit overhead: POST /fit wall time against fit + save in-process (median, min-max; s); "
        "the server also compiles the model to ONNX after the fit",
        ["case", "server", "of which compile", "floor", "server / floor", "without compile"],
        rows,
    )
    return results


async def parallel_training(session: aiohttp.ClientSession, url: str, slots: int) -> dict[str, Any]:
    """K fits one after another, then the same K at once, on K free slots."""
    case = CASES[1]
    cores = os.cpu_count() or 1
    k = slots
    bodies = [case.body(f"parallel-{i}") for i in range(k)]
    started = time.perf_counter()
    for body in bodies:
        await timed_post(session, f"{url}/fit", body, 201)
    sequential = time.perf_counter() - started
    for i in range(k):
        await session.post(f"{url}/remove", json={"config": {"name": f"parallel-{i}"}})
    started = time.perf_counter()
    await asyncio.gather(*(timed_post(session, f"{url}/fit", body, 201) for body in bodies))
    together = time.perf_counter() - started
    for i in range(k):
        await session.post(f"{url}/remove", json={"config": {"name": f"parallel-{i}"}})
    speed_up = sequential / together
    ideal = min(k, cores)
    show(
        f"Parallel training: {k} medium fits on {k} free slots ({cores} cores)",
        ["run", "wall s", "speed-up", "ideal min(K, cores)", "efficiency"],
        [
            ["one after another", f"{sequential:.2f}", "1.00", "", ""],
            ["all at once", f"{together:.2f}", f"{speed_up:.2f}", ideal, f"{speed_up / ideal:.2f}"],
        ],
    )
    return {
        "k": k,
        "sequential_s": sequential,
        "parallel_s": together,
        "speed_up": speed_up,
        "efficiency": speed_up / ideal,
    }
