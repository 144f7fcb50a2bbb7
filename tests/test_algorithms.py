"""Every model type answers every question the service asks of a type (server.algorithms):
a sixth type is one module, and this test tells what it still lacks."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification

from server.algorithms import ALGORITHMS, MODEL_TYPES, THREAD_PARAMETERS, NotConvertible
from server.algorithms.base import Algorithm
from server.inference.compiled.runtimes import NativeRuntime, OnnxRuntime
from server.ml.explanations import training_means
from server.ml.progress import NoProgress, TrainingCall
from tests.helpers import explained_probabilities


class Recording(NoProgress):
    def __init__(self) -> None:
        self.total: int | None = -1
        self.done: list[int] = []

    def begin(self, total: int | None) -> None:
        self.total = total

    def advance(self, done: int) -> None:
        self.done.append(done)


def small(algorithm: Algorithm) -> dict[str, Any]:
    """A few iterations: the answers, not the model, are under test."""
    for key, value in (("iterations", 5), ("n_estimators", 5), ("max_iter", 200)):
        if key in algorithm.accepted_parameters:
            return {key: value}
    return {}


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_type_answers_every_question(model_type: str) -> None:
    algorithm = ALGORITHMS[model_type.lower()]
    assert algorithm.name == model_type and algorithm.estimator_class().__name__
    X, y = make_classification(200, 4, n_informative=3, n_redundant=0, n_classes=3, random_state=0)

    # Hyperparameters: threads pinned to one, unknown names refused, objectives known.
    effective = algorithm.effective_hyperparameters({"n_jobs": 8, **small(algorithm)})
    assert not (set(effective) & THREAD_PARAMETERS) - {algorithm.thread_parameter}
    if algorithm.thread_parameter is not None:
        assert effective[algorithm.thread_parameter] == 1
    assert set(algorithm.objective_keys + algorithm.class_count_keys) <= (
        algorithm.accepted_parameters
    )
    if algorithm.seed_parameter is not None:
        assert algorithm.seed_parameter in algorithm.accepted_parameters

    # Training, with progress where the type reports it.
    estimator = algorithm.build(effective)
    sink = Recording()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        algorithm.train(estimator, TrainingCall(X, y, sink))
    if algorithm.reports_progress:
        assert sink.total is not None and sink.total > 0 and sink.done
        assert sink.done == sorted(sink.done) and sink.done[-1] <= sink.total
    else:
        assert sink.total is None
    native = NativeRuntime(estimator, algorithm.predict_kwargs)
    probabilities = native.probabilities(X)
    assert probabilities.shape == (len(X), 3)

    # Explanations add up to the predictions they explain.
    means = training_means(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's first import: matplotlib's deprecations
        explainer = algorithm.explainer_for(estimator)
    explanation = algorithm.explain(explainer, X[:20], 3, means)
    assert explanation.contributions.shape == (20, 3, 4)
    np.testing.assert_allclose(
        explained_probabilities(explanation.output, explanation.totals()),
        probabilities[:20],
        atol=1e-5,
    )

    # Conversion: a graph that answers for the same rows, or a reason.
    try:
        onnx = algorithm.convert(estimator, 4)
    except NotConvertible as why:
        assert str(why)
    else:
        compiled = OnnxRuntime(onnx).probabilities(X.astype(OnnxRuntime(onnx).input_dtype))
        np.testing.assert_allclose(compiled, probabilities, atol=1e-4)
    thresholds = algorithm.thresholds(estimator, 4)
    assert set(thresholds) <= set(range(4))
    assert all(np.isfinite(values).any() for values in thresholds.values())

    # AutoML's space: draws the type accepts, the same for the same seed.
    draws = [algorithm.space(np.random.default_rng(seed)) for seed in (1, 1, 2)]
    assert draws[0] == draws[1]
    for draw in draws:
        algorithm.effective_hyperparameters(draw)


def test_a_type_that_answers_nothing_is_told() -> None:
    class Sixth(Algorithm):
        name, module, class_name = "Sixth", "sklearn.tree", "DecisionTreeClassifier"

    sixth = Sixth()
    with pytest.raises(NotImplementedError):
        sixth.explain(None, np.zeros((1, 1)), 2, None)
    with pytest.raises(NotImplementedError):
        sixth.space(np.random.default_rng(0))
    with pytest.raises(NotConvertible):
        sixth.convert(None, 1)
