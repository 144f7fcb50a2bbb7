"""Parallel training against one slot, and the fit cases the other sections share."""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import numpy as np
import orjson
from sklearn.datasets import make_classification

from bench.harness import show, timed_post


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
