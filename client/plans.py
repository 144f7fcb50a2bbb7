"""Which models the demos train, on what data, and how long each fit is made to take.

A full run makes every fit last at least a minute. The data is fixed (make_classification,
20,000 x 40, no downloads) and the number of trees or boosting rounds is calibrated on the
server itself: a short probe fit is timed, and the count is scaled to the target time.
Fit time grows linearly with the count for all four types, as long as each tree or round
costs about the same: trees are kept deep and boosting's learning rate small.
LogisticRegression is left out: on this data it converges in well under a second, whatever
its settings.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sklearn.datasets import make_classification

from client.sync_client import ModelClient

# Every demo fit holds out the same 20% of the rows (same data, fraction and seed) and is
# scored on them: the scores of the five types compare on the same held-out rows.
HOLDOUT: dict[str, Any] = {"validation_fraction": 0.2, "validation_seed": 0}
FULL_DATA = {"n_samples": 20_000, "n_features": 40}
QUICK_DATA = {"n_samples": 400, "n_features": 10}


@dataclass(frozen=True)
class SlowModel:
    model_type: str
    count_key: str  # the hyperparameter that scales the fit time
    probe_count: int  # enough for a probe of a few seconds
    hyperparameters: dict[str, Any]
    # --quick: seconds, and a sensible model (the slow settings' tiny learning rate with a
    # few rounds would predict one class).
    quick: dict[str, Any]


# A low learning rate and no minimum hessian per leaf keep every tree as deep as the first:
# otherwise boosted trees shrink as the model fits, and the fit ends early (seen: LightGBM
# at 54 s for a 75 s calibration).
STEADY_BOOSTING = {"learning_rate": 0.002, "min_child_weight": 0}
SLOW_MODELS = [
    SlowModel(
        "RandomForestClassifier",
        "n_estimators",
        20,
        {"max_depth": 12, "max_features": 0.5},
        {"n_estimators": 30},
    ),
    SlowModel(
        "XGBClassifier",
        "n_estimators",
        40,
        {"max_depth": 10, "tree_method": "exact", **STEADY_BOOSTING},
        {"n_estimators": 30, "max_depth": 3},
    ),
    SlowModel(
        "LGBMClassifier",
        "n_estimators",
        150,
        {"num_leaves": 255, "min_child_samples": 5, **STEADY_BOOSTING},
        {"n_estimators": 30, "num_leaves": 7},
    ),
    SlowModel(
        "CatBoostClassifier",
        "iterations",
        80,
        {"depth": 10, "learning_rate": 0.02},
        {"iterations": 30, "depth": 4},
    ),
]


@dataclass(frozen=True)
class TrainingPlan:
    name: str
    model_type: str
    hyperparameters: dict[str, Any]


def make_data(quick: bool, seed: int = 7) -> tuple[list[list[float]], list[str]]:
    """The demos' training data: string labels, to show they come back as they went in."""
    size = QUICK_DATA if quick else FULL_DATA
    X, y = make_classification(
        n_informative=size["n_features"] // 2, flip_y=0.1, random_state=seed, **size
    )
    return X.tolist(), ["yes" if label else "no" for label in y]


def quick_plans(prefix: str) -> list[TrainingPlan]:
    return [TrainingPlan(f"{prefix}-{m.model_type}", m.model_type, m.quick) for m in SLOW_MODELS]


WARM_UP_ROWS = 60


def warm_up(client: ModelClient, X: list[list[float]], y: list[str], prefix: str) -> None:
    """Before anything is timed: a small fit of each type on every training slot at once.
    A new server's training processes import their libraries and start each one on their
    first fits (seconds); timed, that would be counted against whichever run came first."""
    slots = client.status()["training"]["slots"]
    names = [f"{prefix}-warm-up-{slot}" for slot in range(slots)]
    for model in SLOW_MODELS:
        for name in names:
            remove_if_present(client, name)
        few = {**model.quick, model.count_key: 5}
        jobs = [
            client.fit(name, model.model_type, X[:WARM_UP_ROWS], y[:WARM_UP_ROWS], few, wait=False)
            for name in names
        ]
        for job in jobs:
            client.wait(job)
    for name in names:
        client.remove(name)
    print(f"warmed up: a small fit of each type on each of the {slots} training slot(s)")


def calibrated_plans(
    client: ModelClient, X: list[list[float]], y: list[str], prefix: str, target_seconds: float
) -> list[TrainingPlan]:
    """Time two probe fits of each type on the server (n and 2n trees or rounds), and scale
    the count to `target_seconds`. Two points separate the fixed cost of a fit (binning the
    data, CatBoost's set-up) from the per-iteration cost, which one point folds into the
    rate. A probe slowed by other load still makes the real fit shorter than planned: the
    target's margin over 60 s is what absorbs that."""
    plans = []
    for model in SLOW_MODELS:
        seconds = [
            probe_seconds(client, X, y, prefix, model, count)
            for count in (model.probe_count, 2 * model.probe_count)
        ]
        per_unit = (seconds[1] - seconds[0]) / model.probe_count
        if per_unit <= 0:  # noise swamped the difference: fall back to the plain rate
            per_unit = seconds[1] / (2 * model.probe_count)
        fixed = max(0.0, seconds[0] - per_unit * model.probe_count)
        count = math.ceil((target_seconds - fixed) / per_unit)
        print(
            f"  calibrated {model.model_type}: {seconds[0]:.1f} s for {model.probe_count}, "
            f"{seconds[1]:.1f} s for {2 * model.probe_count} -> {model.count_key}={count} "
            f"for ~{target_seconds:.0f} s"
        )
        plans.append(
            TrainingPlan(
                f"{prefix}-{model.model_type}",
                model.model_type,
                {**model.hyperparameters, model.count_key: count},
            )
        )
    return plans


def probe_seconds(
    client: ModelClient,
    X: list[list[float]],
    y: list[str],
    prefix: str,
    model: SlowModel,
    count: int,
) -> float:
    name = f"{prefix}-probe-{model.model_type}"
    remove_if_present(client, name)
    answer = client.fit(
        name, model.model_type, X, y, {**model.hyperparameters, model.count_key: count}, **HOLDOUT
    )
    client.remove(name)
    seconds: float = answer["train_seconds"]
    return seconds


BASELINE_TYPE = "LogisticRegression"


def baseline_fit(client: ModelClient, X: Any, y: Any, prefix: str) -> dict[str, Any]:
    """LogisticRegression on the same rows and held-out share: the fifth type of the scores
    table (it trains in a second, so the timed demos leave it out)."""
    name = f"{prefix}-{BASELINE_TYPE}"
    remove_if_present(client, name)
    answer: dict[str, Any] = client.fit(name, BASELINE_TYPE, X, y, **HOLDOUT)
    client.remove(name)
    return answer


def remove_if_present(client: ModelClient, name: str) -> None:
    """Free a name this demo used before; other models are left alone."""
    if any(info["name"] == name for info in client.models()["models"]):
        client.remove(name)


def save_results(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2))


def read_results(path: Path) -> dict[str, Any]:
    results: dict[str, Any] = json.loads(path.read_text())
    return results


def plans_from(results: dict[str, Any], prefix: str) -> list[TrainingPlan]:
    """The sequential run's plans, renamed for another run."""
    return [
        TrainingPlan(f"{prefix}-{p['model_type']}", p["model_type"], p["hyperparameters"])
        for p in results["plans"]
    ]


def as_dicts(plans: list[TrainingPlan]) -> list[dict[str, Any]]:
    return [asdict(plan) for plan in plans]
