"""LogisticRegression (scikit-learn): lbfgs, explained exactly by its coefficients."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.algorithms.base import Algorithm, log_uniform
from server.algorithms.onnx_export import SKLEARN_OPSETS
from server.ml.explanations import Explanation, Output


class LogisticRegressionType(Algorithm):
    name = "LogisticRegression"
    module = "sklearn.linear_model"
    class_name = "LogisticRegression"
    # Its n_jobs does nothing since scikit-learn 1.8 (and warns): its BLAS is pinned by
    # threadpoolctl instead.
    thread_parameter = None
    # lbfgs offers no per-iteration hook: its jobs show no progress fraction.
    reports_progress = False
    handles_missing = False
    seed_parameter = None  # lbfgs is deterministic

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

    def convert(self, estimator: Any, n_features: int) -> bytes:
        """skl2onnx, in double precision, as scikit-learn computes it."""
        from skl2onnx import to_onnx

        model = to_onnx(
            estimator,
            np.zeros((1, n_features), dtype=np.float64),
            options={"zipmap": False},
            target_opset=SKLEARN_OPSETS,
        )
        return bytes(model.SerializeToString())

    def space(self, rng: np.random.Generator) -> dict[str, Any]:
        """C log-uniform 1e-3..1e2; max_iter 1000."""
        return {"C": log_uniform(rng, 1e-3, 1e2), "max_iter": 1000}


LOGISTIC_REGRESSION = LogisticRegressionType()
