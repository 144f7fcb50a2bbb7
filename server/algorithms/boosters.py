"""What the three boosters share: their TreeSHAP answers (rows, [outputs,] features + 1), the
bias last, which is the expected value and the same in every row."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.ml.explanations import Explanation, Output


def booster_explanation(values: Any, n_classes: int) -> Explanation:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 2:
        values = values[:, None, :]
    output: Output = "log_odds" if n_classes == 2 else "raw"
    return Explanation(output, values[0, :, -1].copy(), np.ascontiguousarray(values[:, :, :-1]))
