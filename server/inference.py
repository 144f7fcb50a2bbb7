"""LoadedModel: one estimator ready to predict, and what one prediction costs.

The estimator predicts indices into `classes`, the original labels. At load time the model
times itself on a few rows: the batcher uses the estimate to run cheap predictions inline.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.algorithms import resolve
from server.errors import InvalidInput
from server.storage import ModelStore

TIMING_ROWS = 64


@dataclass(frozen=True)
class LoadedModel:
    name: str
    model_type: str  # canonical: resolve() refused anything else
    estimator: Any
    classes: np.ndarray
    n_features: int
    predict_kwargs: dict[str, Any]
    seconds_fixed: float = 0.0  # one predict call, whatever its size
    seconds_per_row: float = 0.0

    def check_width(self, X: np.ndarray) -> None:
        if X.shape[1] != self.n_features:
            raise InvalidInput(
                f"model '{self.name}' expects {self.n_features} features per row, got {X.shape[1]}"
            )

    def estimated_seconds(self, rows: int) -> float:
        return self.seconds_fixed + self.seconds_per_row * rows

    def predict(self, X: np.ndarray, probabilities: bool) -> dict[str, Any]:
        """Blocking: inline only when `estimated_seconds` is tiny, else in a thread. The
        caller has checked X's width (`check_width`), before any queueing."""
        try:
            return self._predict(X, probabilities)
        except Exception as error:  # the estimator refused this input
            raise InvalidInput(
                f"model '{self.name}' could not predict: {type(error).__name__}: {error}"
            ) from None

    def _predict(self, X: np.ndarray, probabilities: bool) -> dict[str, Any]:
        answer: dict[str, Any] = {"name": self.name}
        if probabilities:
            proba = np.asarray(self.estimator.predict_proba(X, **self.predict_kwargs))
            answer["predictions"] = self.classes[proba.argmax(axis=1)].tolist()
            answer["probabilities"] = proba.tolist()
            answer["classes"] = self.classes.tolist()
        else:
            indices = np.asarray(self.estimator.predict(X, **self.predict_kwargs)).reshape(-1)
            answer["predictions"] = self.classes[indices.astype(np.int64)].tolist()
        return answer


def read_model(store: ModelStore, name: str) -> LoadedModel:
    """Blocking: load the files, then time a 1-row and a 64-row prediction."""
    bundle = store.load(name)
    algorithm = resolve(bundle["model_type"])
    model = LoadedModel(
        name=name,
        model_type=algorithm.name,
        estimator=bundle["estimator"],
        classes=np.asarray(bundle["classes"]),
        n_features=int(bundle["n_features"]),
        predict_kwargs=dict(algorithm.predict_kwargs),
    )
    one, many = (_fastest_of_3(model, rows) for rows in (1, TIMING_ROWS))
    per_row = max(0.0, (many - one) / (TIMING_ROWS - 1))
    return dataclasses.replace(model, seconds_fixed=one - per_row, seconds_per_row=per_row)


def _fastest_of_3(model: LoadedModel, rows: int) -> float:
    X = np.zeros((rows, model.n_features))
    model.predict(X, probabilities=False)  # warm: first calls allocate
    times = []
    for _ in range(3):
        started = time.perf_counter()
        model.predict(X, probabilities=False)
        times.append(time.perf_counter() - started)
    return min(times)
