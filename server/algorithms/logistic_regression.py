"""LogisticRegression (scikit-learn): lbfgs on prepared columns (categorical ones one-hot,
numeric ones standardised, missing numbers filled with the training mean plus an indicator:
server.algorithms.preparation), so that a real table trains without a convergence warning
and without refusing missing values; explained exactly by its coefficients.

It is answered from its coefficients, each row's sum computed on its own (numpy's sum along
the row), not through a matrix product: scikit-learn's BLAS and ONNX Runtime's MatMul round
the last digit differently by batch size, so a row alone and the same row among others got
two answers. For one row this costs what ONNX Runtime does, so it is not compiled."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
from scipy.special import expit, softmax

from server.algorithms.base import Algorithm, NotConvertible, log_uniform
from server.algorithms.preparation import Preparation
from server.ml.explanations import Explanation, Output

NOT_COMPILED = (
    "not compiled: LogisticRegression is answered from its coefficients, row by row, which "
    "is as fast as ONNX Runtime for one row and never depends on the other rows"
)


class LogisticRegressionType(Algorithm):
    name = "LogisticRegression"
    module = "sklearn.linear_model"
    class_name = "LogisticRegression"
    # Its n_jobs does nothing since scikit-learn 1.8 (and warns): its BLAS is pinned by
    # threadpoolctl instead.
    thread_parameter = None
    # lbfgs offers no per-iteration hook: its jobs show no progress fraction.
    reports_progress = False
    handles_missing = False  # the estimator; its preparation fills them in
    imputes = True
    explained_against_means = True
    seed_parameter = None  # lbfgs is deterministic

    def preparation(self, X: np.ndarray, levels: tuple[int | None, ...]) -> Preparation:
        return Preparation.fit(X, levels, standardise=True)

    def explain(
        self, explainer: Any, X: np.ndarray, n_classes: int, means: list[float] | None
    ) -> Explanation:
        """Coefficient times (x minus the training rows' mean), in the margin."""
        if means is None:
            raise ValueError("no training means")
        mean = np.asarray(means, dtype=np.float64)
        coefficients = np.asarray(explainer.coef_, dtype=np.float64)  # (outputs, features)
        intercepts = np.asarray(explainer.intercept_, dtype=np.float64)
        contributions = (X - mean)[:, None, :] * coefficients[None, :, :]
        base = intercepts + coefficients @ mean
        output: Output = "log_odds" if len(coefficients) == 1 else "raw"
        return Explanation(output, base, contributions)

    def probabilities_for(self, estimator: Any) -> Callable[[np.ndarray], np.ndarray]:
        coefficients = np.asarray(estimator.coef_, dtype=np.float64)[None, :, :]
        intercepts = np.asarray(estimator.intercept_, dtype=np.float64)
        return partial(linear_probabilities, coefficients=coefficients, intercepts=intercepts)

    def convert(self, estimator: Any, n_features: int) -> bytes:
        raise NotConvertible(NOT_COMPILED)

    def space(self, rng: np.random.Generator) -> dict[str, Any]:
        """C log-uniform 1e-3..1e2; max_iter 1000."""
        return {"C": log_uniform(rng, 1e-3, 1e2), "max_iter": 1000}


def linear_probabilities(
    X: np.ndarray, coefficients: np.ndarray, intercepts: np.ndarray
) -> np.ndarray:
    """scikit-learn's predict_proba (the sigmoid of the margin for two classes, the softmax
    of the margins for more), each row's margin summed along that row alone."""
    margins = (X[:, None, :] * coefficients).sum(axis=2) + intercepts
    if margins.shape[1] == 1:
        positive = expit(margins[:, 0])
        return np.column_stack([1.0 - positive, positive])
    return np.asarray(softmax(margins, axis=1))


LOGISTIC_REGRESSION = LogisticRegressionType()
