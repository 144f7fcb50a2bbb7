"""Explanations against the predictions they explain, over many small generated tables
(issue 29). Each example draws a table (1 to 4 features, 2 or 3 classes, int or string
labels, values on a grid or to 3 decimals, a constant column sometimes, missing values for
the types that take them), trains it with the training processes' own code (`fit_model`,
with a held-out share, so that the fit's feature importance is computed too), and explains
the training rows and fresh rows with missing values. On every row and output, base +
contributions must map to the model's own probabilities, a constant column must get exactly
0, and the importance must be sorted and name every column.

`EXPLAIN_EXAMPLES` sets the tables per model type (CI: 30, the same ones every run).
"""

from __future__ import annotations

import os
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import RandomForestClassifier

from server.algorithms import resolve
from server.inference.compiled.runtimes import NativeRuntime
from server.ml.progress import NoProgress
from server.training.fit import fit_model
from server.training.importance import (
    IMPORTANCE_ROWS,
    PILOT_ROWS,
    feature_importance,
    importance_budget,
)
from server.training.request import Holdout, TrainingRequest
from tests.helpers import MODEL_TYPES, explained_probabilities

EXAMPLES = int(os.environ.get("EXPLAIN_EXAMPLES", "30"))


@st.composite
def tables(draw: st.DrawFn, handles_missing: bool) -> dict[str, Any]:
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    n, n_features = draw(st.integers(24, 60)), draw(st.integers(1, 4))
    n_classes = draw(st.sampled_from([2, 3]))
    if draw(st.booleans()):
        X = rng.integers(0, 5, size=(n, n_features)) * 0.25
    else:
        X = np.round(rng.normal(size=(n, n_features)), 3)
    constant = draw(st.booleans()) and n_features > 1
    if constant:
        X[:, -1] = 1.75
    y = np.arange(n) % n_classes  # every class, several times
    rng.shuffle(y)
    X[:, 0] += y * 0.5  # something to learn
    missing = handles_missing and draw(st.booleans())
    if missing:  # never in the constant column: NaN or not would be something to split on
        varying = X[:, :-1] if constant else X
        varying[rng.random(varying.shape) < 0.15] = np.nan
    labels = ["a", "b", "c"][:n_classes] if draw(st.booleans()) else list(range(n_classes))
    return {"X": X, "y": y, "classes": labels, "constant": constant, "seed": seed}


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_explanations_add_up_on_every_row(model_type: str) -> None:
    algorithm = resolve(model_type)
    small = {} if model_type == "LogisticRegression" else {"n_estimators": 8}
    checked: list[int] = []

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(table=tables(algorithm.handles_missing))
    def check(table: dict[str, Any]) -> None:
        X, y = table["X"], table["y"]
        request = TrainingRequest(
            name="t",
            model_type=model_type,
            hyperparameters=algorithm.effective_hyperparameters(small),
            X=X,
            y_encoded=y,
            classes=table["classes"],
            holdout=Holdout(0.25, table["seed"]),
            compile=False,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tiny tables: libraries warn of them
            fitted = fit_model(request, NoProgress())
        estimator = fitted.bundle["estimator"]
        fresh = np.vstack([X, X[::-1] + 0.125])
        if algorithm.handles_missing:
            fresh[::3, 0] = np.nan
        if table["constant"]:  # the value every training row has
            fresh[:, -1] = X[0, -1]
        means = fitted.metadata.get("training_means")
        n_classes = len(table["classes"])
        explanation = algorithm.explain(algorithm.explainer_for(estimator), fresh, n_classes, means)
        native = NativeRuntime(estimator, algorithm.predict_kwargs).probabilities(fresh)
        np.testing.assert_allclose(
            explained_probabilities(explanation.output, explanation.totals()),
            native,
            atol=1e-5,
            rtol=0,
        )
        assert explanation.contributions.shape == (
            len(fresh),
            1 if n_classes == 2 else n_classes,
            X.shape[1],
        )
        importance = fitted.metadata["validation"]["feature_importance"]
        assert sorted(importance) == sorted(f"x{i}" for i in range(X.shape[1]))
        assert list(importance.values()) == sorted(importance.values(), reverse=True)
        if table["constant"]:
            assert (explanation.contributions[:, :, -1] == 0).all()
            assert importance[f"x{X.shape[1] - 1}"] == 0
        checked.append(len(fresh))

    check()
    assert len(checked) >= EXAMPLES  # every table drawn was explained
    print(f"\n{model_type}: {len(checked)} tables, {sum(checked)} rows explained")


def test_the_fits_importance_explains_as_many_rows_as_its_budget_allows() -> None:
    """A fit's importance is bounded by a share of its training time (issue 37, item 15):
    with no budget it is over the few rows that time a row, with a large one over IMPORTANCE_ROWS at most, and
    exact either way (the mean of the chosen rows' absolute contributions)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(300, 4))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(X, y)
    names = ["a", "b", "c", "d"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # shap's first import: matplotlib's deprecations
        resolve("RandomForestClassifier").explainer_for(forest)
    _, pilot = feature_importance("RandomForestClassifier", forest, X, 2, None, names, 0.0)
    assert pilot == PILOT_ROWS
    found, rows = feature_importance("RandomForestClassifier", forest, X, 2, None, names, 1e9)
    assert rows == IMPORTANCE_ROWS
    chosen = X[np.sort(np.random.default_rng(0).permutation(len(X))[:IMPORTANCE_ROWS])]
    forests = resolve("RandomForestClassifier")
    explanation = forests.explain(forests.explainer_for(forest), chosen, 2, None)
    expected = np.abs(explanation.contributions).mean(axis=(0, 1))
    np.testing.assert_allclose([found[name] for name in names], expected, rtol=1e-12)
    assert importance_budget(600.0) == 30.0 and importance_budget(0.1) == 1.0
