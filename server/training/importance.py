"""Global importance: how much each feature moves the model's output on average, computed by
every fit on its held-out rows and kept in the version's metadata.

It is exact SHAP, but over a sample of the held-out rows whose size a budget sets: a share
of the training time. A large booster explains slower than it trains (hundreds of ms a
row), and the fit answers, and frees its slot, only once this is done: rows are explained in
chunks (a few first, to time them, then as many as the budget has room for) until the
budget is spent or IMPORTANCE_ROWS are done, and `importance_rows` says how many it is over.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from server.algorithms import resolve
from server.algorithms.preparation import sum_groups

IMPORTANCE_ROWS = 200  # at most, drawn with a fixed seed (docs/explanations.md)
BUDGET_SHARE = 0.05  # of the training time
MIN_BUDGET_SECONDS = 1.0  # a fit of a second still explains its rows
PILOT_ROWS = 4  # explained first, whatever the budget: they time a row


def importance_budget(train_seconds: float) -> float:
    return max(MIN_BUDGET_SECONDS, BUDGET_SHARE * train_seconds)


def feature_importance(
    model_type: str,
    estimator: Any,
    X: np.ndarray,
    n_classes: int,
    means: list[float] | None,
    feature_names: list[str],
    budget_seconds: float,
    groups: list[np.ndarray] | None = None,
) -> tuple[dict[str, float], int]:
    """Each feature's mean absolute contribution over the rows and outputs, largest first
    (ties in column order), and how many rows it is over (at least PILOT_ROWS, or all). With
    `groups` (a prepared model's columns per original column), a feature's contribution in
    a row is the sum over its group: the mean of the absolute sums, not the sum of the
    prepared columns' means (which overstates it)."""
    order = np.random.default_rng(0).permutation(len(X))[:IMPORTANCE_ROWS]
    algorithm = resolve(model_type)
    explainer = algorithm.explainer_for(estimator)
    started = time.perf_counter()
    total = np.zeros(len(groups) if groups is not None else X.shape[1])
    done, chunk = 0, PILOT_ROWS
    while chunk > 0:
        rows = X[np.sort(order[done : done + chunk])]
        explanation = algorithm.explain(explainer, rows, n_classes, means)
        contributions = explanation.contributions
        if groups is not None:
            contributions = sum_groups(contributions, groups)
        total += np.abs(contributions).mean(axis=1).sum(axis=0)
        done += len(rows)
        elapsed = time.perf_counter() - started
        affordable = (budget_seconds - elapsed) / (elapsed / done) if elapsed > 0 else math.inf
        chunk = int(max(0, min(affordable, len(order) - done)))
    mean_absolute = total / done
    ranked = np.argsort(-mean_absolute, kind="stable")
    return {feature_names[i]: float(mean_absolute[i]) for i in ranked}, done
