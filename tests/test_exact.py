"""Exact answers (issue 17): a compiled model answers as its estimator does, whatever the row,
and the defects found when that was tried stay fixed. Two real servers share one models
directory: the default one (compiled where the check passes) and INFERENCE_RUNTIME=native."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.model_selection import train_test_split

from server.algorithms import resolve
from tests.helpers import MODEL_TYPES, answered, rows
from tests.servers import uvicorn_server

Pair = tuple[httpx.Client, httpx.Client]  # (compiled where it can be, native)


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    models = tmp_path_factory.mktemp("models")
    env = {"MAX_INFERENCE_MODELS": "50"}
    with (
        uvicorn_server(models, training_cores=3, env=env) as (auto_url, _),
        uvicorn_server(models, env={**env, "INFERENCE_RUNTIME": "native"}) as (native_url, _),
        httpx.Client(base_url=auto_url, timeout=120) as auto,
        httpx.Client(base_url=native_url, timeout=120) as native,
    ):
        yield auto, native


def fit(client: httpx.Client, name: str, model_type: str, X: Any, y: Any, **config: Any) -> dict:
    body = {
        "X": rows(np.asarray(X, dtype=float)),
        "y": np.asarray(y).tolist(),
        "config": {"name": name, "model_type": model_type, **config},
    }
    answer = client.post("/fit", json=body)
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


def load_both(servers: Pair, name: str) -> None:
    for client in servers:
        assert client.post("/load", json={"config": {"name": name}}).status_code == 200


def both(servers: Pair, path: str, body: dict) -> tuple[httpx.Response, httpx.Response]:
    auto, native = servers
    return auto.post(path, json=body), native.post(path, json=body)


def assert_same_answer(compiled: httpx.Response, native: httpx.Response) -> None:
    """The same status and body, but for probabilities, which may differ by the compiled
    model's stated tolerance (its float32 sums)."""
    assert compiled.status_code == native.status_code, (compiled.text, native.text)
    ours, theirs = answered(compiled), answered(native)  # each request has its own id
    if "probabilities" in theirs:
        gap = np.abs(np.asarray(ours.pop("probabilities")) - theirs.pop("probabilities"))
        assert gap.max() <= 1e-4, gap.max()
    assert ours == theirs


def five_decimals(n: int, n_features: int, n_classes: int, seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    X = np.round(rng.normal(size=(n, n_features)), 5)
    score = X[:, 0] + 0.5 * X[:, 1] + rng.normal(scale=0.5, size=n)
    y = np.digitize(score, np.quantile(score, np.linspace(0, 1, n_classes + 1)[1:-1]))
    return X, y


# -- 1 and 5: probabilities in [0, 1]; /evaluate gives the fit's own scores ----------------------
@pytest.mark.parametrize("n_classes", [2, 3])
def test_a_compiled_forest_answers_probabilities_in_range_and_evaluate_reproduces_the_fit(
    servers: Pair, n_classes: int
) -> None:
    X, y = five_decimals(600, 6, n_classes, seed=n_classes)
    name = f"forest-{n_classes}"
    config = {"hyperparameters": {"n_estimators": 60, "random_state": 0}}
    fitted = fit(
        servers[0], name, "RandomForestClassifier", X, y, validation_fraction=0.25, **config
    )
    load_both(servers, name)
    assert servers[0].get(f"/models/{name}").json()["runtime"] == "onnx"

    fresh, _ = five_decimals(2000, 6, n_classes, seed=10 + n_classes)
    compiled, native = both(
        servers, "/predict", {"X": rows(fresh), "config": {"name": name, "probabilities": True}}
    )
    assert compiled.json()["predictions"] == native.json()["predictions"]
    probabilities = np.asarray(compiled.json()["probabilities"])
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0
    assert np.abs(probabilities.sum(axis=1) - 1.0).max() <= 1e-12

    # The validation rows, as the documented split makes them.
    _, X_val, _, y_val = train_test_split(X, y, test_size=0.25, stratify=y, random_state=0)
    body = {"X": rows(X_val), "y": y_val.tolist(), "config": {"name": name}}
    compiled, native = both(servers, "/evaluate", body)
    assert compiled.status_code == native.status_code == 200, compiled.text
    assert compiled.json()["scores"] == native.json()["scores"] == fitted["validation"]["scores"]


# -- 2: a row at the midpoint of two training values ----------------------------------------------
def test_a_row_at_a_forest_split_midpoint_goes_the_way_scikit_learn_sends_it(servers: Pair) -> None:
    """0.59934 and 0.59936 split at their midpoint in double; scikit-learn compares
    float32(0.59935) with it and goes left. The old graph (nearest float32 threshold) went right."""
    X, y = [[0.59934], [0.59936]] * 5, [0, 1] * 5
    config = {"hyperparameters": {"n_estimators": 1, "bootstrap": False, "random_state": 0}}
    fit(servers[0], "midpoint", "RandomForestClassifier", X, y, **config)
    load_both(servers, "midpoint")
    assert servers[0].get("/models/midpoint").json()["runtime"] == "onnx"
    body = {
        "X": [[0.59935], [0.5993500053882599], [0.59935001]],
        "config": {"name": "midpoint", "probabilities": True},
    }
    compiled, native = both(servers, "/predict", body)
    assert_same_answer(compiled, native)
    assert compiled.json()["predictions"][0] == 0


# -- 4: values beyond float32's range ------------------------------------------------------------
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_values_beyond_float32_get_the_same_answer_on_both_runtimes(
    servers: Pair, model_type: str
) -> None:
    X, y = five_decimals(200, 3, 2, seed=4)
    hyperparameters = {} if model_type == "LogisticRegression" else {"n_estimators": 20}
    fit(servers[0], f"giant-{model_type}", model_type, X, y, hyperparameters=hyperparameters)
    load_both(servers, f"giant-{model_type}")
    statuses = []
    for value in (1e300, -1e300, 3.5e38, 3.4028234663852886e38, 3.4e38, 1e-300):
        body = {
            "X": [[value, 0.1, -0.2]],
            "config": {"name": f"giant-{model_type}", "probabilities": True},
        }
        compiled, native = both(servers, "/predict", body)
        assert_same_answer(compiled, native)
        statuses.append(compiled.status_code)
    # scikit-learn's forest refuses what overflows float32; the other libraries answer.
    refused = 422 if model_type == "RandomForestClassifier" else 200
    assert statuses == [refused, refused, refused, 200, 200, 200]


# -- 6: iteration counts are the library's to refuse -----------------------------------------------
COUNTS = {
    "LogisticRegression": ["max_iter"],
    "RandomForestClassifier": ["n_estimators"],
    "XGBClassifier": ["n_estimators"],
    "LGBMClassifier": ["n_estimators"],
    "CatBoostClassifier": ["iterations", "n_estimators"],
}


def library_verdict(model_type: str, parameter: str, value: Any, X: Any, y: Any) -> str | None:
    """What the library itself says of this count: None if it trains, else its message."""
    algorithm = resolve(model_type)
    try:
        with warnings.catch_warnings():  # as in a training process: warnings are not errors
            warnings.simplefilter("ignore")
            algorithm.build(algorithm.effective_hyperparameters({parameter: value})).fit(X, y)
    except Exception as error:
        return str(error)
    return None


@pytest.mark.parametrize(
    ("model_type", "parameter"), [(t, p) for t, ps in COUNTS.items() for p in ps]
)
def test_a_bad_count_is_refused_in_the_librarys_words_or_trains_as_the_library_does(
    servers: Pair, model_type: str, parameter: str
) -> None:
    X, y = five_decimals(80, 3, 2, seed=6)
    for value in (0, -3, 2.5, "ten"):
        name = f"count-{model_type}-{parameter}-{str(value).replace('.', '_')}"
        config = {"name": name, "model_type": model_type, "hyperparameters": {parameter: value}}
        answer = servers[0].post("/fit", json={"X": rows(X), "y": y.tolist(), "config": config})
        expected = library_verdict(model_type, parameter, value, X, y)
        if expected is None:  # XGBoost trains no trees for 0 or -3; scikit-learn's max_iter=0
            assert answer.status_code == 201, answer.text
            load_both(servers, name)
            body = {"X": rows(X[:20]), "config": {"name": name, "probabilities": True}}
            assert_same_answer(*both(servers, "/predict", body))
        else:
            assert answer.status_code == 422, (value, answer.text)
            assert expected.splitlines()[0][:60] in answer.json()["detail"], (value, expected)
            assert servers[0].get(f"/models/{name}").status_code == 404


# -- 7 and 8: files ------------------------------------------------------------------------------
def post_file(client: httpx.Client, data: bytes, name: str = "labels") -> httpx.Response:
    config = json.dumps({"name": name, "model_type": "LogisticRegression"})
    return client.post(
        "/fit", files={"file": ("t.csv", data)}, data={"target": "label", "config": config}
    )


@pytest.mark.parametrize("spelling", ["NA", "null", "", "NaN", "N/A"])
def test_a_label_spelled_as_a_missing_value_is_missing_in_a_text_column(
    servers: Pair, spelling: str
) -> None:
    csv = f"a,b,label\n1,2,yes\n3,4,no\n5,6,{spelling}\n7,8,yes\n".encode()
    answer = post_file(servers[0], csv)
    assert answer.status_code == 422
    assert (
        "the target column 'label' has 1 missing label(s), the first on line 4"
        in answer.json()["detail"]
    )
    # The same table as JSON (null) and as Parquet (a null) is refused alike.
    body = {
        "X": [[1, 2], [3, 4], [5, 6], [7, 8]],
        "y": ["yes", "no", None, "yes"],
        "config": {"name": "labels", "model_type": "LogisticRegression"},
    }
    assert servers[0].post("/fit", json=body).status_code == 422
    buffer = io.BytesIO()
    pq.write_table(
        pa.table({"a": [1, 3, 5, 7], "b": [2, 4, 6, 8], "label": ["yes", "no", None, "yes"]}),
        buffer,
    )
    parquet = post_file(servers[0], buffer.getvalue())
    assert parquet.status_code == 422 and "the first on row 3" in parquet.json()["detail"]


def test_lines_are_the_files_own_after_a_quoted_newline(servers: Pair) -> None:
    ragged = b'a,b,label\n1,2,"two\nlines"\n3,4\n5,6,x\n'
    answer = post_file(servers[0], ragged)
    assert answer.status_code == 422
    assert "line 4: Expected 3 columns, got 2" in answer.json()["detail"], answer.text
    not_a_number = b'a,b,label\n1,2,"two\nlines"\noops,4,z\n'
    answer = post_file(servers[0], not_a_number)
    assert answer.status_code == 422
    assert "column 'a' mixes numbers ('1') and text ('oops', line 4)" in answer.json()["detail"]
    missing_label = b'a,b,label\n1,2,"two\nlines"\n3,4,\n5,6,x\n'
    answer = post_file(servers[0], missing_label)
    assert "the first on line 4" in answer.json()["detail"], answer.text
