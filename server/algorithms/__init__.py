"""The model types, one module each (as MLServer has one runtime per library): everything
the service asks of a type, answered in one place (`base.Algorithm` lists the questions).
A sixth type is one more module, and one more line here."""

from __future__ import annotations

from server.algorithms.base import THREAD_PARAMETERS, Algorithm, NotConvertible
from server.algorithms.catboost_classifier import CATBOOST
from server.algorithms.lightgbm_classifier import LIGHTGBM
from server.algorithms.logistic_regression import LOGISTIC_REGRESSION
from server.algorithms.random_forest import RANDOM_FOREST
from server.algorithms.xgboost_classifier import XGBOOST
from server.errors import InvalidInput

__all__ = [
    "ALGORITHMS",
    "MODEL_TYPES",
    "THREAD_PARAMETERS",
    "Algorithm",
    "NotConvertible",
    "preload",
    "resolve",
]

ALGORITHMS: dict[str, Algorithm] = {
    algorithm.name.lower(): algorithm
    for algorithm in (LOGISTIC_REGRESSION, RANDOM_FOREST, XGBOOST, LIGHTGBM, CATBOOST)
}
MODEL_TYPES: tuple[str, ...] = tuple(algorithm.name for algorithm in ALGORITHMS.values())


def resolve(model_type: str) -> Algorithm:
    """The algorithm for `model_type`, matched case-insensitively."""
    try:
        return ALGORITHMS[model_type.lower()]
    except KeyError:
        raise InvalidInput(
            f"unknown model_type '{model_type}': expected one of {', '.join(MODEL_TYPES)}"
        ) from None


def preload() -> None:
    """Import every estimator library now, so that no request pays for it."""
    for algorithm in ALGORITHMS.values():
        algorithm.estimator_class()
