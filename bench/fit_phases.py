"""Each phase's share of a fit, for the demos' four models, before and after the importance
budget (issue 37, item 15).

The demos' models (client/plans.py: 20,000 x 40, deep trees, a small learning rate) with
their count of trees or rounds set for about TARGET_SECONDS of training here (one probe fit,
scaled), each fit in this process, as a training process runs it. After training, a fit
with held-out rows scores them and computes the features' importance (exact SHAP), then
compiles and checks its ONNX copy. The previous design explained up to 200 held-out rows
whatever they cost; now the importance takes at most a share of the training time. Both
are measured on the same trained model, so only the budget differs.
"""

from __future__ import annotations

import math
import time
import warnings
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from bench.harness import show
from client.plans import HOLDOUT, SLOW_MODELS, make_data
from server.algorithms import resolve
from server.ml.progress import NoProgress
from server.training import fit as fitting
from server.training.importance import importance_budget
from server.training.request import Holdout, TrainingRequest

TARGET_SECONDS = 20.0  # a quarter of the demos' calibrated fits: the same models, fewer trees


def _request(
    model_type: str, hyperparameters: dict[str, Any], X: np.ndarray, y: Any
) -> TrainingRequest:
    classes = sorted(set(y))
    return TrainingRequest(
        name="phases",
        model_type=model_type,
        hyperparameters=resolve(model_type).effective_hyperparameters(hyperparameters),
        X=X,
        y_encoded=np.searchsorted(classes, y),
        classes=classes,
        holdout=Holdout(HOLDOUT["validation_fraction"], HOLDOUT["validation_seed"]),
        compile=model_type != "LGBMClassifier",
    )


def _phases(request: TrainingRequest, budget_seconds: float | None) -> dict[str, float]:
    """Seconds per phase of one fit, the importance's budget replaced if given."""
    timed: dict[str, float] = {}
    started = [time.perf_counter()]
    current = ["training"]

    class Clock(NoProgress):
        def phase(self, name: str) -> None:
            now = time.perf_counter()
            timed[current[0]] = timed.get(current[0], 0.0) + now - started[0]
            current[0], started[0] = name, now

    original = fitting.importance_budget
    if budget_seconds is not None:
        fitting.importance_budget = lambda _seconds: budget_seconds  # type: ignore[assignment]
    try:
        with warnings.catch_warnings(), threadpool_limits(limits=1):
            warnings.simplefilter("ignore")
            fitted = fitting.fit_model(request, Clock())
    finally:
        fitting.importance_budget = original  # type: ignore[assignment]
    timed[current[0]] = timed.get(current[0], 0.0) + time.perf_counter() - started[0]
    timed["importance_rows"] = fitted.metadata["validation"]["importance_rows"]
    return timed


def fit_phases() -> list[dict[str, Any]]:
    X_list, y = make_data(quick=False)
    X = np.asarray(X_list)
    results = []
    for model in SLOW_MODELS:
        probe_count = model.probe_count
        probe = _request(
            model.model_type, {**model.hyperparameters, model.count_key: probe_count}, X, y
        )
        seconds = _phases(probe, budget_seconds=0.0)["training"]
        count = max(probe_count, math.ceil(probe_count * TARGET_SECONDS / seconds))
        request = _request(
            model.model_type, {**model.hyperparameters, model.count_key: count}, X, y
        )
        before = _phases(request, budget_seconds=math.inf)  # 200 rows, whatever they cost
        after = _phases(request, budget_seconds=None)  # the budget
        results.append(
            {
                "model": f"{model.model_type} ({model.count_key}={count})",
                "before": before,
                "after": after,
            }
        )
    rows = []
    for result in results:
        for design in ("before", "after"):
            timed = result[design]
            after_training = sum(
                v for k, v in timed.items() if k not in ("training", "importance_rows")
            )
            rows.append([
                result["model"], design, f"{timed['training']:.1f}",
                f"{timed.get('explaining', 0.0):.1f}", int(timed["importance_rows"]),
                f"{timed.get('compiling', 0.0) + timed.get('checking', 0.0):.1f}",
                f"{100 * after_training / timed['training']:.0f}%",
            ])  # fmt: skip
    show(
        "Each phase of a demo model's fit, s (in-process; before: 200 rows explained whatever "
        f"they cost; after: the importance within {importance_budget(100.0) / 100:.0%} of the "
        "training time)",
        ["model", "design", "training", "explaining", "rows explained", "compiling + checking",
         "after training / training"],
        rows,
    )  # fmt: skip
    return results
