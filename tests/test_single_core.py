"""One training is one core: the worker's CPU time over its wall time stays near 1.

An estimator that used both cores of this machine would show a ratio near 2. The fits are
sized to take about a second each, long enough for the ratio to mean something.
"""

from __future__ import annotations

import pytest

from tests.helpers import fit_body

pytestmark = pytest.mark.anyio

SECOND_LONG_FITS = {
    "LogisticRegression": {"solver": "saga", "max_iter": 500, "tol": 0},
    "RandomForestClassifier": {"n_estimators": 25},
    "XGBClassifier": {"n_estimators": 400},
    "LGBMClassifier": {"n_estimators": 400},
    "CatBoostClassifier": {"iterations": 300},
}


@pytest.mark.parametrize("model_type", SECOND_LONG_FITS)
async def test_training_uses_one_core(client, model_type: str) -> None:
    body = fit_body(
        "one-core", model_type, SECOND_LONG_FITS[model_type], n_samples=20_000, n_features=20
    )
    response = await client.post("/fit", json=body)
    assert response.status_code == 201, response.text
    answer = response.json()
    ratio = answer["train_cpu_seconds"] / answer["train_seconds"]
    cpu, wall = answer["train_cpu_seconds"], answer["train_seconds"]
    print(f"{model_type}: cpu {cpu:.2f}s / wall {wall:.2f}s = {ratio:.2f}")
    assert answer["train_seconds"] > 0.3, "fit too short for the ratio to mean anything"
    assert ratio < 1.2
