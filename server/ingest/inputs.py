"""What a parsed request holds, whichever format it came in (JSON or a file)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.errors import InvalidInput
from server.ingest.features import Features
from server.schemas import EvaluateConfig, PredictConfig

INT64 = np.iinfo(np.int64)
MAX_LABEL_CHARS = 256


@dataclass(frozen=True)
class FitInput:
    config: Any  # FitConfig; AutoMLConfig for /automl (server.schemas.automl)
    X: np.ndarray  # float64, NaN where a value is missing
    y: list[Any]
    feature_names: list[str] | None  # a file's columns; None for a JSON X


@dataclass(frozen=True)
class PredictInput:
    config: PredictConfig
    features: Features


@dataclass(frozen=True)
class EvaluateInput:
    config: EvaluateConfig
    features: Features
    y: list[Any]


def labels(values: Any, field: str = "y") -> list[Any]:
    """Integers (64-bit) or strings (1 to 256 characters), not mixed."""
    if not isinstance(values, list) or not values:
        raise InvalidInput(f"{field} must be a non-empty list of labels")
    kinds = set(map(type, values))
    if kinds == {int}:
        if min(values) < INT64.min or max(values) > INT64.max:
            raise InvalidInput(f"{field}: integer labels must fit in 64 bits")
        return values
    if kinds == {str}:
        lengths = set(map(len, values))
        if min(lengths) < 1 or max(lengths) > MAX_LABEL_CHARS:
            raise InvalidInput(
                f"{field}: string labels must have 1 to {MAX_LABEL_CHARS} characters"
            )
        return values
    raise InvalidInput(
        f"{field} must hold only integers or only strings, not a mix (nor floats or booleans)"
    )
