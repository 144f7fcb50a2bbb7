"""Exact SHAP values: what every type's `explain` answers (server.algorithms, each with its
library's own method, docs/explanations.md): one output per class, or one for binary models
(the positive class), and a base value per output that is the same for every row. Nothing
samples or approximates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

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


def column_names(feature_names: list[str] | None, n_features: int) -> list[str]:
    """A model's columns as explanations name them: x0, x1, ... for one trained from a JSON X."""
    return feature_names or [f"x{index}" for index in range(n_features)]


def training_means(X: np.ndarray) -> list[float]:
    """Each column's mean over the training rows; a constant column's value exactly, so that
    its contribution is exactly 0 (a float mean of equal values can miss them by an ulp)."""
    means = X.mean(axis=0)
    constant = (X[:1] == X).all(axis=0)
    return np.where(constant, X[0], means).tolist()


def preload_explainers() -> None:
    """Import what the forests' explanations need now (a few seconds: numba, pandas): the
    explanation process does, as it starts, so that no explanation pays for it."""
    import shap  # noqa: F401
