"""What the dashboard draws of a fit's held-out rows, computed where the fit ran (the rows
never leave the training process) and kept small in the metadata's `validation`:

- `roc_curve`: one curve per class, one-vs-rest (for two classes, the second class's, as
  `roc_auc` scores it), each thinned to at most MAX_POINTS points, rounded to 4 digits;
- `confusion_matrix`: counts of held-out rows by true class (rows) and predicted class
  (columns), in the order of the model's classes.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, roc_curve

MAX_POINTS = 64


def _thinned(values: np.ndarray, keep: np.ndarray) -> list[float]:
    return [round(float(value), 4) for value in values[keep]]


def _curve(is_class: np.ndarray, score: np.ndarray) -> dict[str, list[float]] | None:
    if is_class.all() or not is_class.any():  # undefined with one kind of row only
        return None
    fpr, tpr, _ = roc_curve(is_class, score)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), MAX_POINTS)).round().astype(int))
    return {"fpr": _thinned(fpr, keep), "tpr": _thinned(tpr, keep)}


def pictures(
    y_true: np.ndarray, probabilities: np.ndarray, predicted: np.ndarray
) -> dict[str, Any]:
    """`y_true`, `predicted`: indices into the model's classes (the label its library's
    `predict` gives, as the server answers); `probabilities`: one column per class."""
    n_classes = probabilities.shape[1]
    columns = [1] if n_classes == 2 else range(n_classes)
    curves = [
        {"class_index": column, **curve}
        for column in columns
        if (curve := _curve(y_true == column, probabilities[:, column])) is not None
    ]
    matrix = confusion_matrix(y_true, predicted, labels=list(range(n_classes)))
    return {"roc_curve": curves, "confusion_matrix": matrix.tolist()}
