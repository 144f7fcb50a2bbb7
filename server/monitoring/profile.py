"""The reference profile a fit keeps in the version's signed metadata: what the training
rows looked like, binned, so that the rows a model meets later can be compared with them
(drift) without keeping a single raw value.

- a numeric column: the edges of 10 quantile bins of its training values (fewer where
  values repeat: edges are distinct), each bin's share, and the share of missing values;
- a categorical column: each level's share (in the model's order of levels) and the share of
  missing cells (unseen is 0 here by definition: every level of the training rows is seen);
- the training labels: each class's share.

Shares are of the training rows only (with `validation_fraction`, the held-out rows are the
model's first unseen rows, as any later request is).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from server.tables.columns import Columns

BINS = 10


def reference_profile(
    X: np.ndarray, columns: Columns, y_encoded: np.ndarray, classes: list[Any]
) -> dict[str, Any]:
    """The profile of the training rows X (codes for categorical columns, NaN missing)."""
    rows = len(X)
    features = []
    for index, column in enumerate(columns.columns):
        values = X[:, index]
        missing = np.isnan(values)
        present = values[~missing]
        described: dict[str, Any] = {"name": column.name, "kind": column.kind}
        if column.categorical:
            counts = np.bincount(present.astype(np.int64), minlength=len(column.levels))
            described["shares"] = _shares(counts, rows)
        else:
            edges = _edges(present)
            counts = np.bincount(np.searchsorted(edges, present, side="right"),
                                 minlength=len(edges) + 1)  # fmt: skip
            described["edges"] = edges.tolist()
            described["shares"] = _shares(counts, rows)
        described["missing"] = round(float(missing.sum()) / rows, 6) if rows else 0.0
        features.append(described)
    class_counts = np.bincount(y_encoded, minlength=len(classes))
    return {
        "rows": rows,
        "features": features,
        "classes": dict(zip(map(str, classes), _shares(class_counts, rows), strict=True)),
    }


def _edges(values: np.ndarray) -> np.ndarray:
    """The distinct inner edges of BINS quantile bins (a bin is [edge_i, edge_i+1))."""
    if not len(values):
        return np.empty(0)
    inner = np.quantile(values, np.linspace(0, 1, BINS + 1)[1:-1])
    return np.unique(inner)


def _shares(counts: np.ndarray, rows: int) -> list[float]:
    return [round(float(count) / rows, 6) if rows else 0.0 for count in counts]
