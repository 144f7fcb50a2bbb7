"""LightGBM's native path (issue 31): the server asks a LightGBM model's Booster directly, on
one thread, instead of its scikit-learn wrapper. That is only allowed if nothing changes:
over many small generated tables (1 to 4 features, 2 to 10 classes, missing values in
training and in the rows asked, rows on, just above and just below every split value), the
probabilities must be the wrapper's `predict_proba` to the bit, and the labels its
`predict`.

`LIGHTGBM_EXAMPLES` sets the number of tables (CI: 40, the same ones every run).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.algorithms import resolve
from server.inference.compiled.probes import probe_rows
from server.inference.compiled.runtimes import NativeRuntime
from server.ml.probabilities import well_formed
from server.ml.progress import NoProgress
from server.training.fit import fit_model
from server.training.request import TrainingRequest

EXAMPLES = int(os.environ.get("LIGHTGBM_EXAMPLES", "40"))
ALGORITHM = resolve("LGBMClassifier")


@st.composite
def tables(draw: st.DrawFn) -> dict[str, Any]:
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n_classes = draw(st.sampled_from([2, 2, 3, 10]))
    n = draw(st.integers(3, 8)) * n_classes * 4
    n_features = draw(st.integers(1, 4))
    if draw(st.booleans()):
        X = rng.integers(0, 5, size=(n, n_features)) * 0.25
    else:
        X = np.round(rng.normal(size=(n, n_features)), 3)
    y = np.arange(n) % n_classes
    rng.shuffle(y)
    X[:, 0] += y * 0.5
    if draw(st.booleans()):
        X[rng.random(X.shape) < 0.15] = np.nan
    labels = [f"c{i}" for i in range(n_classes)] if draw(st.booleans()) else list(range(n_classes))
    return {"X": X, "y": y, "classes": labels}


def test_the_booster_answers_as_the_wrapper_to_the_bit() -> None:
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(table=tables(), trees=st.sampled_from([1, 5, 20]))
    def check(table: dict[str, Any], trees: int) -> None:
        X = table["X"]
        request = TrainingRequest(
            name="t",
            model_type="LGBMClassifier",
            hyperparameters=ALGORITHM.effective_hyperparameters({"n_estimators": trees}),
            X=X,
            y_encoded=table["y"],
            classes=table["classes"],
            holdout=None,
            compile=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tiny tables: LightGBM warns of them
            estimator = fit_model(request, NoProgress()).bundle["estimator"]
        rows = probe_rows(X, resolve("LGBMClassifier").thresholds(estimator, X.shape[1]), limit=300)
        rows = np.vstack([rows, X, np.full((1, X.shape[1]), np.nan)])
        rows[::7, 0] = np.nan
        runtime = NativeRuntime(estimator, ALGORITHM.predict_kwargs)
        answered = runtime.probabilities(rows)
        assert np.array_equal(answered, well_formed(estimator.predict_proba(rows)))
        assert answered.shape == (len(rows), len(table["classes"]))
        assert np.array_equal(runtime.indices(rows), estimator.predict(rows))

    check()
