"""Compiled against native, over many small generated tables (issue 17).

Each example draws a table of a kind people send (values to 3-5 decimals, grids of a few
values, near-duplicate rows, few distinct values; 2 to 10 classes, int or string labels;
missing values for the types that take them), trains it with the training processes' own
code (`fit_model`, with a held-out share), saves it, and loads it twice as the server does:
compiled where the check passes (`auto`) and `native`. Both then answer the training rows,
fresh rows, rows at the model's split values and rows with extreme values, and must agree:
the same labels, the same refusals, probabilities in [0, 1] summing to 1 and within the
compiled model's stated tolerance, and the same /evaluate scores, which are the fit's own.

`EXACT_EXAMPLES` sets the tables per model type (CI: 40, the same ones every run);
`EXACT_RANDOM=1` draws new ones. The counts are printed at the end of the module.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.algorithms import resolve
from server.errors import InvalidInput
from server.inference.compiled.probes import EXTREMES, graph_trees, probe_rows
from server.inference.loaded import LoadedModel, read_model
from server.ml.progress import NoProgress
from server.ml.scoring import holdout
from server.store import recovery
from server.store.files import ModelStore
from server.training.fit import fit_model
from server.training.request import Holdout, TrainingRequest
from tests.conftest import SUMMARY
from tests.helpers import KEY, MODEL_TYPES

EXAMPLES = int(os.environ.get("EXACT_EXAMPLES", "40"))
KINDS = ("decimals", "grid", "near_duplicates", "few_values")
VALIDATION = 0.25


@dataclass(frozen=True)
class Table:
    kind: str
    X: np.ndarray
    y: np.ndarray  # indices into classes
    classes: list[Any]
    seed: int

    def fresh(self, n: int) -> np.ndarray:
        return make_X(self.kind, n, self.X.shape[1], self.seed + 1, missing=0.0)


def make_X(kind: str, n: int, n_features: int, seed: int, missing: float) -> np.ndarray:
    rng = np.random.default_rng(seed)
    decimals = 3 + seed % 3
    if kind == "decimals":
        X = np.round(rng.normal(size=(n, n_features)), decimals)
    elif kind == "grid":
        X = rng.integers(0, 6, size=(n, n_features)) * 0.1
    elif kind == "near_duplicates":  # rows a last decimal apart
        base = np.round(rng.normal(size=(max(2, n // 4), n_features)), decimals)
        X = (
            base[rng.integers(0, len(base), n)]
            + rng.integers(-1, 2, (n, n_features)) * 10.0**-decimals
        )
    else:  # few distinct values, not on a grid
        X = rng.choice(np.round(rng.normal(size=4), decimals), size=(n, n_features))
    X[rng.random(X.shape) < missing] = np.nan
    return np.asarray(X, dtype=np.float64)


@st.composite
def tables(draw: st.DrawFn, handles_missing: bool) -> Table:
    seed = draw(st.integers(0, 2**31 - 1))
    kind = draw(st.sampled_from(KINDS))
    n_rows = draw(st.integers(40, 160))
    n_classes = draw(st.integers(2, min(10, n_rows // 8)))
    missing = draw(st.sampled_from([0.0, 0.1, 0.3])) if handles_missing else 0.0
    X = make_X(kind, n_rows, draw(st.integers(1, 5)), seed, missing)
    # Classes from a noisy score, in equal shares: learnable, and each holds rows to hold out.
    rng = np.random.default_rng(seed)
    score = np.nan_to_num(X[:, 0]) + rng.normal(scale=0.3, size=n_rows)
    y = np.empty(n_rows, dtype=np.int64)
    y[np.argsort(score, kind="stable")] = np.arange(n_rows) * n_classes // n_rows
    text = draw(st.booleans())
    classes = [f"c{k}" for k in range(n_classes)] if text else [7 * k - 3 for k in range(n_classes)]
    return Table(kind, X, y, classes, seed)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    models = ModelStore(Path(tmp_path_factory.mktemp("exact")), KEY)
    recovery.prepare(models)
    return models


@pytest.fixture(scope="module")
def tally(request: pytest.FixtureRequest) -> Iterator[Counter[str]]:
    counts: Counter[str] = Counter()
    yield counts
    request.config.stash.setdefault(SUMMARY, []).append(
        f"exactness: {counts['tables']} tables ({counts['compiled']} served compiled), "
        f"{counts['rows']} rows compared, {counts['refusals']} refusals alike"
    )


def train(store: ModelStore, model_type: str, table: Table, trees: int, name: str) -> dict:
    algorithm = resolve(model_type)
    wanted = {} if model_type == "LogisticRegression" else {"n_estimators": trees}
    if model_type == "RandomForestClassifier":
        wanted["random_state"] = 0
    request = TrainingRequest(
        name=name,
        model_type=model_type,
        hyperparameters=algorithm.effective_hyperparameters(wanted),
        X=table.X,
        y_encoded=table.y,
        classes=table.classes,
        holdout=Holdout(VALIDATION, table.seed % 7),
    )
    with warnings.catch_warnings():  # as in a training process: a warning is no error
        warnings.simplefilter("ignore")
        fitted = fit_model(request, NoProgress())
    return store.save(name, 1, fitted.bundle, fitted.metadata)


def answer(model: LoadedModel, X: np.ndarray) -> dict[str, Any]:
    try:
        model.check_input(X)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return {**model.predict(X, True), "labels": model.predict(X, False)["predictions"]}
    except InvalidInput as error:
        return {"refused": str(error)}


def assert_alike(
    compiled: LoadedModel, native: LoadedModel, X: np.ndarray, tally: Counter[str]
) -> None:
    ours, theirs = answer(compiled, X), answer(native, X)
    tally["rows"] += len(X)
    if "refused" in theirs:
        assert ours == theirs
        tally["refusals"] += 1
        return
    assert ours["predictions"] == theirs["predictions"] == theirs["labels"] == ours["labels"]
    probabilities = np.asarray(ours["probabilities"])
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0
    assert np.abs(probabilities.sum(axis=1) - 1.0).max() <= 1e-9
    gap = np.abs(probabilities - np.asarray(theirs["probabilities"])).max()
    assert gap <= compiled.choice.tolerance, (gap, compiled.choice.detail)


def extreme_rows(fresh: np.ndarray) -> list[np.ndarray]:
    """One row per extreme value and feature: each is answered (or refused) on its own."""
    return [
        np.where(np.arange(fresh.shape[1]) == feature, value, fresh[0])[None, :]
        for value in EXTREMES
        for feature in range(fresh.shape[1])
    ]


@pytest.mark.parametrize("model_type", MODEL_TYPES)
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("EXACT_RANDOM") != "1",
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_compiled_answers_as_native_on_generated_tables(
    store: ModelStore, tally: Counter[str], model_type: str, data: st.DataObject
) -> None:
    algorithm = resolve(model_type)
    table = data.draw(tables(algorithm.handles_missing), label="table")
    trees = data.draw(st.integers(1, 30), label="trees")
    name = f"{model_type}-{tally['tables']}"
    metadata = train(store, model_type, table, trees, name)
    compiled, native = read_model(store, name, 1, "auto"), read_model(store, name, 1, "native")
    tally["tables"] += 1
    tally["compiled"] += compiled.choice.name == "onnx"

    bundle = store.load(name, 1)
    n_features = table.X.shape[1]
    thresholds = graph_trees(bundle["onnx"], n_features)[0] if bundle.get("onnx") else {}
    for feature, values in resolve(model_type).thresholds(bundle["estimator"], n_features).items():
        thresholds[feature] = np.concatenate([thresholds.get(feature, []), values])
    fresh = table.fresh(60)
    at_splits = probe_rows(table.X, thresholds, 6000, seed=1)  # not the load check's own rows
    for X in (
        table.X,
        fresh,
        at_splits[np.abs(at_splits).max(axis=1) < 1e38],
        *extreme_rows(fresh),
    ):
        assert_alike(compiled, native, X, tally)

    _, held_out = holdout(len(table.X), table.y, VALIDATION, table.seed % 7)
    y_val = [table.classes[i] for i in table.y[held_out]]
    scores = metadata["validation"]["scores"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert compiled.evaluate(table.X[held_out], y_val)["scores"] == scores
        assert native.evaluate(table.X[held_out], y_val)["scores"] == scores
