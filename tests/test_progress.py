"""Progress hooks, in-process: each library reports iterations that rise to the total, and a
forest grown in chunks is the forest of one fit."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier

from server.algorithms import random_forest, resolve
from server.ml.progress import TrainingCall


class RecordingSink:
    def __init__(self) -> None:
        self.total: int | None = -1
        self.done: list[int] = []

    def begin(self, total: int | None) -> None:
        self.total = total

    def advance(self, done: int) -> None:
        self.done.append(done)

    def finish(self) -> None:
        if self.total is not None:
            self.done.append(self.total)


def data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=400, n_features=8, random_state=0)


@pytest.mark.parametrize(
    ("model_type", "hyperparameters", "total"),
    [
        ("RandomForestClassifier", {"n_estimators": 40}, 40),
        ("XGBClassifier", {"n_estimators": 40}, 40),
        ("LGBMClassifier", {"n_estimators": 40}, 40),
        ("CatBoostClassifier", {"iterations": 40}, 40),
        ("CatBoostClassifier", {"n_estimators": 25}, 25),
        ("CatBoostClassifier", {}, 1000),
    ],
)
def test_progress_rises_monotonically_to_the_total(
    model_type: str, hyperparameters: dict[str, Any], total: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random_forest, "FOREST_CHUNK_SECONDS", 0.0)  # a chunk per tree
    algorithm = resolve(model_type)
    estimator = algorithm.build(algorithm.effective_hyperparameters(hyperparameters))
    sink = RecordingSink()
    algorithm.train(estimator, TrainingCall(*data(), sink))
    assert sink.total == total
    assert sink.done == sorted(sink.done)
    assert sink.done[-1] == total
    assert len(set(sink.done)) >= min(total, 25)  # per iteration, not only at the end
    assert 0 < sink.done[0] < total


def test_logistic_regression_reports_no_measure() -> None:
    algorithm = resolve("LogisticRegression")
    sink = RecordingSink()
    algorithm.train(algorithm.build({}), TrainingCall(*data(), sink))
    assert sink.total is None
    assert sink.done == []


@pytest.mark.parametrize("chunk_seconds", [0.0, 0.002])
def test_a_forest_grown_in_chunks_predicts_exactly_like_one_fit(
    chunk_seconds: float, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(random_forest, "FOREST_CHUNK_SECONDS", chunk_seconds)
    X, y = make_classification(n_samples=600, n_features=10, n_classes=3, n_informative=5)
    params = {"n_estimators": 45, "random_state": 11, "max_features": 0.5, "oob_score": True}
    single = RandomForestClassifier(**params).fit(X, y)
    chunked = RandomForestClassifier(**params)
    sink = RecordingSink()
    resolve("RandomForestClassifier").train(chunked, TrainingCall(X, y, sink))
    assert len(sink.done) > 2  # really grown in several chunks

    fresh, _ = make_classification(n_samples=500, n_features=10, random_state=99)
    assert np.array_equal(single.predict_proba(fresh), chunked.predict_proba(fresh))
    assert np.array_equal(single.predict(fresh), chunked.predict(fresh))
    assert chunked.oob_score_ == single.oob_score_
    # The user's parameters are back as they were: no warm_start left on the saved model.
    assert chunked.get_params() == single.get_params()
