"""What every probability the server answers or scores looks like: double precision, within
[0, 1], each row summing to 1. Float32 sums miss that by a hair (an ONNX Runtime session:
-5.2e-08, 1.0000000298; XGBoost's own rows sum to 1.00000003), which scikit-learn's log loss
refuses."""

from __future__ import annotations

from typing import Any

import numpy as np


def well_formed(probabilities: Any) -> np.ndarray:
    """Probabilities in double precision, within [0, 1], each row summing to 1: clipped, and
    only the rows that miss 1 by more than 1e-12 rescaled (rescaling rows of doubles that
    already sum to 1 could make two neighbouring values equal, and change the argmax)."""
    values = np.asarray(probabilities, dtype=np.float64)
    # One pass each, no np.allclose: this runs on every request (see docs/performance-history.md,
    # Figures behind the code).
    if values.min() < 0.0 or values.max() > 1.0:
        values = np.clip(values, 0.0, 1.0)
    sums = values.sum(axis=1)
    off = np.abs(sums - 1.0) > 1e-12
    if not off.any():
        return values
    values = values.copy() if values is probabilities else values
    values[off] /= sums[off, None]
    return values
