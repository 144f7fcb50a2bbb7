"""What a search tries, in which order: each type's defaults first, then draws from its
space below, the types taking turns; reproducible for a seed (numpy's PCG64).

    LogisticRegression      C log-uniform 1e-3..1e2; max_iter 1000
    RandomForestClassifier  n_estimators {100, 200, 400}; max_depth {None, 8, 16, 32};
                            min_samples_leaf {1, 2, 4, 8}; max_features {sqrt, 0.5, 1.0}
    XGBClassifier           n_estimators 400; learning_rate log-uniform 0.02..0.3;
                            max_depth 3..10; subsample, colsample_bytree 0.6..1;
                            min_child_weight {1, 3, 5}
    LGBMClassifier          n_estimators 400; learning_rate log-uniform 0.02..0.3;
                            num_leaves {15, 31, 63, 127}; min_child_samples {5, 10, 20, 40};
                            colsample_bytree 0.6..1
    CatBoostClassifier      iterations 400; learning_rate log-uniform 0.02..0.3; depth 4..8;
                            l2_leaf_reg log-uniform 1..10

Every type that has a seed gets the search's (`random_state`, CatBoost's `random_seed`).
Boosters stop early: EARLY_STOPPING_ROUNDS rounds without improvement on the held-out rows.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

EARLY_STOPPING_ROUNDS = 20
BOOSTERS = frozenset({"XGBClassifier", "LGBMClassifier", "CatBoostClassifier"})
Draw = Callable[[np.random.Generator], dict[str, Any]]


def _log_uniform(rng: np.random.Generator, low: float, high: float) -> float:
    return round(float(math.exp(rng.uniform(math.log(low), math.log(high)))), 5)


def _pick(rng: np.random.Generator, choices: list[Any]) -> Any:
    chosen = choices[int(rng.integers(len(choices)))]
    return chosen.item() if isinstance(chosen, np.generic) else chosen


SPACES: dict[str, Draw] = {
    "LogisticRegression": lambda rng: {"C": _log_uniform(rng, 1e-3, 1e2), "max_iter": 1000},
    "RandomForestClassifier": lambda rng: {
        "n_estimators": _pick(rng, [100, 200, 400]),
        "max_depth": _pick(rng, [None, 8, 16, 32]),
        "min_samples_leaf": _pick(rng, [1, 2, 4, 8]),
        "max_features": _pick(rng, ["sqrt", 0.5, 1.0]),
    },
    "XGBClassifier": lambda rng: {
        "n_estimators": 400,
        "learning_rate": _log_uniform(rng, 0.02, 0.3),
        "max_depth": int(rng.integers(3, 11)),
        "subsample": round(float(rng.uniform(0.6, 1.0)), 3),
        "colsample_bytree": round(float(rng.uniform(0.6, 1.0)), 3),
        "min_child_weight": _pick(rng, [1, 3, 5]),
    },
    "LGBMClassifier": lambda rng: {
        "n_estimators": 400,
        "learning_rate": _log_uniform(rng, 0.02, 0.3),
        "num_leaves": _pick(rng, [15, 31, 63, 127]),
        "min_child_samples": _pick(rng, [5, 10, 20, 40]),
        "colsample_bytree": round(float(rng.uniform(0.6, 1.0)), 3),
        "verbose": -1,
    },
    "CatBoostClassifier": lambda rng: {
        "iterations": 400,
        "learning_rate": _log_uniform(rng, 0.02, 0.3),
        "depth": int(rng.integers(4, 9)),
        "l2_leaf_reg": _log_uniform(rng, 1.0, 10.0),
    },
}


# Each library's own seed, set to the search's: the same seed trains the same candidates.
SEED_PARAMETER = {
    "RandomForestClassifier": "random_state",
    "XGBClassifier": "random_state",
    "LGBMClassifier": "random_state",
    "CatBoostClassifier": "random_seed",
}


def candidates(model_types: list[str], seed: int) -> Iterator[tuple[str, dict[str, Any]]]:
    """(model type, hyperparameters), endlessly: the defaults of each type, then draws."""
    rng = np.random.default_rng(seed)

    def seeded(model_type: str, drawn: dict[str, Any]) -> dict[str, Any]:
        parameter = SEED_PARAMETER.get(model_type)
        return drawn if parameter is None else {**drawn, parameter: seed}

    for model_type in model_types:
        yield model_type, seeded(model_type, {})
    while True:
        for model_type in model_types:
            yield model_type, seeded(model_type, SPACES[model_type](rng))
