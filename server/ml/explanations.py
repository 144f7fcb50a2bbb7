"""Exact SHAP values, per type, with each library's own method (docs/explanations.md):

- XGBoost: the booster's `pred_contribs`; LightGBM: `pred_contrib`; CatBoost: `ShapValues`
  (all three TreeSHAP, path-dependent, in the model's margin);
- RandomForest: `shap`'s TreeExplainer, exact and path-dependent, in the averaged leaf
  probabilities (scikit-learn has no TreeSHAP of its own);
- LogisticRegression: coefficient times (x minus the training rows' mean), in the margin.

Every method answers one output per class, or one for binary models (the positive class), and
a base value per output that is the same for every row. Nothing here samples or approximates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Output = Literal["log_odds", "raw", "probability"]


@dataclass(frozen=True)
class Explanation:
    output: Output  # the space in which base + contributions add up
    base_values: np.ndarray  # (outputs,)
    contributions: np.ndarray  # (rows, outputs, features)

    def totals(self) -> np.ndarray:
        """(rows, outputs): what the contributions add up to, the model's output per row."""
        return np.asarray(self.base_values[None, :] + self.contributions.sum(axis=2))


@dataclass(frozen=True)
class Rows:
    """Rows for one version to explain: what crosses to the explanation process."""

    name: str
    version: int
    tag: str  # the version's metadata tag: what identifies its files
    model_type: str
    n_classes: int
    means: list[float] | None  # LogisticRegression's training means
    X: np.ndarray


def explainer_for(model_type: str, estimator: Any) -> Any:
    """What explains an estimator: the estimator itself, or for a forest shap's TreeExplainer
    over it. Building one reads every tree into arrays, a large share of a 1-row
    explanation: whoever keeps the estimator for more explanations keeps this instead."""
    if model_type != "RandomForestClassifier":
        return estimator
    # Heavy (numba, pandas: seconds): imported when a forest is first explained, not by every
    # training process at start-up, where it would delay every type's first fits.
    import shap

    return shap.TreeExplainer(
        estimator, feature_perturbation="tree_path_dependent", model_output="raw"
    )


def explain(
    model_type: str, explainer: Any, X: np.ndarray, n_classes: int, means: list[float] | None
) -> Explanation:
    """Blocking: the exact explanation of every row of X (float64, NaN where missing), by
    `explainer_for(model_type, estimator)`."""
    if model_type == "LogisticRegression":
        return _linear(explainer, X, means)
    if model_type == "RandomForestClassifier":
        return _forest(explainer, X)
    # The boosters answer (rows, [outputs,] features + 1), the bias last: the expected value,
    # the same in every row.
    values = np.asarray(_BOOSTER_METHODS[model_type](explainer, X), dtype=np.float64)
    if values.ndim == 2:
        values = values[:, None, :]
    output: Output = "log_odds" if n_classes == 2 else "raw"
    return Explanation(output, values[0, :, -1].copy(), np.ascontiguousarray(values[:, :, :-1]))


def column_names(feature_names: list[str] | None, n_features: int) -> list[str]:
    """A model's columns as explanations name them: x0, x1, ... for one trained from a JSON X."""
    return feature_names or [f"x{index}" for index in range(n_features)]


def _xgboost(estimator: Any, X: np.ndarray) -> np.ndarray:
    import xgboost

    booster = estimator.get_booster()
    # The rounds predict_proba uses: up to the best one where the fit stopped early.
    best = getattr(estimator, "best_iteration", None)
    rounds = (0, best + 1) if best is not None else (0, 0)
    matrix = xgboost.DMatrix(X, missing=np.nan, nthread=1)
    return np.asarray(booster.predict(matrix, pred_contribs=True, iteration_range=rounds))


def _lightgbm(estimator: Any, X: np.ndarray) -> np.ndarray:
    # The wrapper's own predict, so that the iterations are those of predict_proba.
    values = np.asarray(estimator.predict(X, pred_contrib=True, num_threads=1))
    n_outputs = values.shape[1] // (X.shape[1] + 1)
    return values.reshape(len(X), n_outputs, X.shape[1] + 1) if n_outputs > 1 else values


def _catboost(estimator: Any, X: np.ndarray) -> np.ndarray:
    from catboost import Pool

    return np.asarray(estimator.get_feature_importance(Pool(X), type="ShapValues", thread_count=1))


def _forest(explainer: Any, X: np.ndarray) -> Explanation:
    # The forest compares float32 values, as scikit-learn's trees read them.
    rows = X.astype(np.float32).astype(np.float64)
    values = np.asarray(explainer.shap_values(rows, check_additivity=False))  # (rows, f, k)
    expected = np.asarray(explainer.expected_value, dtype=np.float64).reshape(-1)
    if values.ndim == 2:
        values = values[:, :, None]
    if len(expected) == 2:  # binary: the positive class, as the other types answer
        values, expected = values[:, :, 1:], expected[1:]
    return Explanation("probability", expected, np.ascontiguousarray(values.transpose(0, 2, 1)))


def _linear(estimator: Any, X: np.ndarray, means: list[float] | None) -> Explanation:
    if means is None:
        raise ValueError("no training means")
    mean = np.asarray(means, dtype=np.float64)
    coefficients = np.asarray(estimator.coef_, dtype=np.float64)  # (outputs, features)
    intercepts = np.asarray(estimator.intercept_, dtype=np.float64)
    contributions = (X - mean)[:, None, :] * coefficients[None, :, :]
    base = intercepts + coefficients @ mean
    output: Output = "log_odds" if len(coefficients) == 1 else "raw"
    return Explanation(output, base, contributions)


def training_means(X: np.ndarray) -> list[float]:
    """Each column's mean over the training rows; a constant column's value exactly, so that
    its contribution is exactly 0 (a float mean of equal values can miss them by an ulp)."""
    means = X.mean(axis=0)
    constant = (X[:1] == X).all(axis=0)
    return np.where(constant, X[0], means).tolist()


_BOOSTER_METHODS: dict[str, Callable[[Any, np.ndarray], np.ndarray]] = {
    "XGBClassifier": _xgboost,
    "LGBMClassifier": _lightgbm,
    "CatBoostClassifier": _catboost,
}


def preload_explainers() -> None:
    """Import what the forests' explanations need now (a few seconds: numba, pandas): the
    explanation process does, as it starts, so that no explanation pays for it."""
    import shap  # noqa: F401
