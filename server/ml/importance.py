"""Global importance: how much each feature moves the model's output on average, computed by
every fit on its held-out rows and kept in the version's metadata."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.ml.explanations import explain, explainer_for

# A forest's exact explanation costs milliseconds a row: a fit explains a sample of its
# held-out rows, drawn with a fixed seed, at most this many (docs/explanations.md).
IMPORTANCE_ROWS = 200


def feature_importance(
    model_type: str,
    estimator: Any,
    X: np.ndarray,
    n_classes: int,
    means: list[float] | None,
    feature_names: list[str],
) -> tuple[dict[str, float], int]:
    """Each feature's mean absolute contribution over the rows and outputs, largest first
    (ties in column order), and how many rows it is over."""
    if len(X) > IMPORTANCE_ROWS:
        chosen = np.random.default_rng(0).choice(len(X), IMPORTANCE_ROWS, replace=False)
        X = X[np.sort(chosen)]
    explanation = explain(model_type, explainer_for(model_type, estimator), X, n_classes, means)
    mean_absolute = np.abs(explanation.contributions).mean(axis=(0, 1))
    order = np.argsort(-mean_absolute, kind="stable")
    return {feature_names[i]: float(mean_absolute[i]) for i in order}, len(X)
