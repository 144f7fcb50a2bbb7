"""Real tables (issue 12): missing values, validation scores, /evaluate, CSV and Parquet files,
records. One real uvicorn server for the module, driven over the wire (multipart included)."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.datasets import make_classification
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import (
    accuracy_score,
    balanced_accuracy_score,
    f1_score,
    log_loss,
    roc_auc_score,
)
from sklearn.model_selection import train_test_split

from tests.helpers import predict_rows as predict
from tests.helpers import rewrite_saved, rows, saved_bundle, stated_tolerance
from tests.servers import uvicorn_server

MISSING_CAPABLE = [
    "RandomForestClassifier",
    "XGBClassifier",
    "LGBMClassifier",
    "CatBoostClassifier",
]
COLUMNS = ["age", "height", "weight", "score", "income"]
MAX_BODY_MB = 1


@pytest.fixture(scope="module")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def client(models_dir: Path) -> Iterator[httpx.Client]:
    env = {"MAX_INFERENCE_MODELS": "20", "MAX_BODY_MB": str(MAX_BODY_MB)}
    with (
        uvicorn_server(models_dir, training_cores=3, env=env) as (url, _),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        yield client


def table(
    n_samples: int = 300, n_classes: int = 2, missing: float = 0.0, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Features (NaN where missing) and integer labels."""
    X, y = make_classification(
        n_samples=n_samples,
        n_features=len(COLUMNS),
        n_informative=3,
        n_redundant=0,
        n_classes=n_classes,
        random_state=seed,
    )
    if missing:
        X[np.random.default_rng(seed).random(X.shape) < missing] = np.nan
    return X, y


def csv_bytes(X: np.ndarray, y: np.ndarray | None, columns: list[str] = COLUMNS) -> bytes:
    """A CSV as a person writes one: header line, empty cells for missing values."""
    lines = [",".join([*columns, *(["label"] if y is not None else [])])]
    for i, row in enumerate(X):
        cells = ["" if np.isnan(v) else repr(float(v)) for v in row]
        if y is not None:
            cells.append(str(y[i]))
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def parquet_bytes(X: np.ndarray, y: np.ndarray, columns: list[str] = COLUMNS) -> bytes:
    data = {name: pa.array(X[:, i], mask=np.isnan(X[:, i])) for i, name in enumerate(columns)}
    buffer = io.BytesIO()
    pq.write_table(pa.table({**data, "label": pa.array(y)}), buffer)
    return buffer.getvalue()


def fit(client: httpx.Client, config: dict[str, Any], X: np.ndarray, y: Any) -> httpx.Response:
    labels = y.tolist() if hasattr(y, "tolist") else y
    return client.post("/fit", json={"X": rows(X), "y": labels, "config": config})


def fit_file(
    client: httpx.Client, config: dict[str, Any], data: bytes, target: str = "label"
) -> httpx.Response:
    return client.post(
        "/fit",
        files={"file": ("train", data)},
        data={"target": target, "config": json.dumps(config)},
    )


def predict_file(client: httpx.Client, name: str, data: bytes, **headers: str) -> httpx.Response:
    return client.post(
        "/predict",
        files={"file": ("rows", data)},
        data={"config": json.dumps({"name": name, "probabilities": True})},
        headers=headers,
    )


def loaded(client: httpx.Client, response: httpx.Response) -> str:
    assert response.status_code == 201, response.text
    name: str = response.json()["name"]
    assert client.post("/load", json={"config": {"name": name}}).status_code == 200
    return name


# -- missing values ------------------------------------------------------------------------------
@pytest.mark.parametrize("model_type", MISSING_CAPABLE)
def test_types_that_handle_missing_values_train_and_predict_with_nulls(
    client: httpx.Client, models_dir: Path, model_type: str
) -> None:
    X, y = table(missing=0.2)
    assert 0.15 < np.isnan(X).mean() < 0.25
    name = loaded(
        client, fit(client, {"name": f"nan-{model_type}", "model_type": model_type}, X, y)
    )

    fresh, _ = table(n_samples=40, missing=0.2, seed=1)
    answer = predict(client, name, fresh)
    # null reached the estimator as NaN: the saved estimator, given NaN, predicts the same.
    bundle = saved_bundle(models_dir, name)
    expected = np.asarray(bundle["estimator"].predict_proba(fresh))
    assert answer["predictions"] == np.asarray(bundle["classes"])[expected.argmax(axis=1)].tolist()
    # Served compiled where its check passed (float32 trees: within the check's tolerance).
    assert np.abs(np.asarray(answer["probabilities"]) - expected).max() <= stated_tolerance(bundle)
    assert len(set(answer["predictions"])) == 2  # not a constant answer


def test_logistic_regression_fills_missing_values_in_and_one_saved_before_v5_refuses_them(
    client: httpx.Client, models_dir: Path
) -> None:
    X, y = table(missing=0.0)
    X[5, 1] = X[9, 3] = np.nan
    name = loaded(client, fit(client, {"name": "lr-nan", "model_type": "LogisticRegression"}, X, y))
    row = [[1.0, None, 2.0, 3.0, 4.0]]
    answer = client.post("/predict", json={"X": row, "config": {"name": name}})
    assert answer.status_code == 200, answer.text
    by_file = fit_file(
        client, {"name": "lr-nan-file", "model_type": "LogisticRegression"}, csv_bytes(X, y)
    )
    assert by_file.status_code == 201, by_file.text

    # A LogisticRegression saved by v4: trained on the raw columns, no preparation kept. It
    # answers as it did, and refuses missing values as it did.
    from sklearn.linear_model import LogisticRegression

    complete = np.nan_to_num(X)
    classes = saved_bundle(models_dir, name)["classes"]
    raw = LogisticRegression(max_iter=1000).fit(complete, np.searchsorted(classes, y))
    client.post("/unload", json={"config": {"name": name}})
    rewrite_saved(
        models_dir,
        name,
        {"estimator": raw, "onnx": None, "onnx_error": "v4", "check_rows": complete[:10]},
        metadata_change={"preparation": ..., "features": ..., "training_means": ...},
    )
    assert client.post("/load", json={"config": {"name": name}}).status_code == 200
    answer = client.post("/predict", json={"X": row, "config": {"name": name}})
    assert answer.status_code == 422
    assert "LogisticRegression can't take missing values" in answer.json()["detail"]
    served = predict(client, name, complete[:30])
    expected = np.asarray(classes)[raw.predict(complete[:30])]
    assert served["predictions"] == expected.tolist()


def test_nan_and_infinity_tokens_stay_refused(client: httpx.Client) -> None:
    for token in (b"NaN", b"Infinity"):
        body = b'{"X": [[1.0, ' + token + b']], "config": {"name": "x"}}'
        answer = client.post("/predict", content=body, headers={"content-type": "application/json"})
        assert answer.status_code == 422
        assert answer.json()["detail"].startswith("the request body is not valid JSON")


# -- validation -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("n_classes", "labels"), [(3, "int"), (2, "str")])
def test_validation_scores_match_scikit_learn_on_the_same_split(
    client: httpx.Client, n_classes: int, labels: str
) -> None:
    X, y_int = table(n_samples=400, n_classes=n_classes)
    y = np.array(["no", "yes"])[y_int] if labels == "str" else y_int * 10
    config = {
        "name": f"val-{n_classes}-{labels}",
        "model_type": "RandomForestClassifier",
        "hyperparameters": {"n_estimators": 30, "random_state": 0},
        "validation_fraction": 0.25,
        "validation_seed": 7,
    }
    answer = fit(client, config, X, y)
    name = loaded(client, answer)
    validation = answer.json()["validation"]
    assert (validation["fraction"], validation["seed"], validation["n_samples"]) == (0.25, 7, 100)

    # The documented split, recomputed here; the model was trained on the rest only.
    train, held = train_test_split(np.arange(len(y)), test_size=0.25, stratify=y, random_state=7)
    ours = RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1).fit(X[train], y[train])
    served = predict(client, name, X[held])
    assert served["predictions"] == ours.predict(X[held]).tolist()

    # Scored from the estimator, as the fit does (the server may serve a compiled copy).
    truth, proba = y[held], ours.predict_proba(X[held])
    classes = served["classes"]
    predicted = ours.predict(X[held])
    auc = (
        roc_auc_score(truth, proba[:, 1])
        if n_classes == 2
        else roc_auc_score(truth, proba, multi_class="ovr", labels=classes)
    )
    expected = {
        "accuracy": accuracy_score(truth, predicted),
        "balanced_accuracy": balanced_accuracy_score(truth, predicted),
        "f1_macro": f1_score(truth, predicted, average="macro"),
        "roc_auc": auc,
        "log_loss": log_loss(truth, proba, labels=classes),
    }
    assert validation["scores"] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    listed = {m["name"]: m for m in client.get("/models").json()["models"]}
    assert listed[name]["validation"] == validation


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"validation_fraction": 0}, "greater than 0"),
        ({"validation_fraction": 0.6}, "less than or equal to 0.5"),
    ],
)
def test_validation_fraction_bounds(client: httpx.Client, change: dict, message: str) -> None:
    X, y = table()
    answer = fit(client, {"name": "vb", "model_type": "LogisticRegression", **change}, X, y)
    assert answer.status_code == 422
    assert message in answer.text


def test_a_split_stratification_cannot_make_is_refused_before_training(
    client: httpx.Client,
) -> None:
    X, y = table(n_samples=20)
    y[0] = 7  # one row of class 7: nothing to hold out
    config = {"name": "vs", "model_type": "LogisticRegression", "validation_fraction": 0.2}
    answer = fit(client, config, X, y)
    assert answer.status_code == 422
    assert "at least 2 rows of every class" in answer.json()["detail"]


# -- /evaluate ---------------------------------------------------------------------------------------
def test_evaluate_scores_and_statuses(client: httpx.Client) -> None:
    X, y = table(n_samples=200, n_classes=3)
    labels = y + 1
    config = {"name": "ev", "model_type": "XGBClassifier", "hyperparameters": {"n_estimators": 20}}
    assert fit(client, config, X[:150], labels[:150]).status_code == 201

    def evaluate(name: str, X_: Any, y_: Any) -> httpx.Response:
        return client.post("/evaluate", json={"X": X_, "y": y_, "config": {"name": name}})

    assert evaluate("nobody", rows(X[150:]), labels[150:].tolist()).status_code == 404
    not_loaded = evaluate("ev", rows(X[150:]), labels[150:].tolist())
    assert not_loaded.status_code == 409
    assert "is not loaded" in not_loaded.json()["detail"]
    assert client.post("/load", json={"config": {"name": "ev"}}).status_code == 200

    answer = evaluate("ev", rows(X[150:]), labels[150:].tolist())
    assert answer.status_code == 200, answer.text
    served = predict(client, "ev", X[150:])
    proba, truth = np.asarray(served["probabilities"]), labels[150:]
    proba /= proba.sum(axis=1, keepdims=True)  # XGBoost's float32 rows, as documented
    assert answer.json() == {
        "name": "ev",
        "version": 1,
        "n_samples": 50,
        "scores": pytest.approx(
            {
                "accuracy": accuracy_score(truth, served["predictions"]),
                "balanced_accuracy": balanced_accuracy_score(truth, served["predictions"]),
                "f1_macro": f1_score(truth, served["predictions"], average="macro"),
                "roc_auc": roc_auc_score(truth, proba, multi_class="ovr", labels=[1, 2, 3]),
                "log_loss": log_loss(truth, proba, labels=[1, 2, 3]),
            }
        ),
    }

    narrow = evaluate("ev", [[1.0, 2.0]] * 3, [1, 2, 3])
    assert narrow.status_code == 422
    assert narrow.json()["detail"] == "model 'ev' expects 5 features per row, got 2"
    unknown = evaluate("ev", rows(X[:3]), [1, 9, "dog"])
    assert unknown.status_code == 422  # a mix of kinds: refused as y is everywhere
    unknown = evaluate("ev", rows(X[:3]), [1, 9, 4])
    assert unknown.status_code == 422
    assert unknown.json()["detail"] == (
        "y holds label(s) model 'ev' was not trained on: 4, 9; its classes are [1, 2, 3]"
    )
    short = evaluate("ev", rows(X[:3]), [1, 2])
    assert short.status_code == 422
    assert short.json()["detail"] == "the rows are 3 but y has 2 labels"


# -- files ----------------------------------------------------------------------------------------------
def test_csv_and_parquet_fits_give_the_json_fit_s_model(client: httpx.Client) -> None:
    X, y = table(missing=0.1)
    fresh, _ = table(n_samples=50, missing=0.1, seed=3)
    hyper = {"n_estimators": 25, "random_state": 0}
    names = {}
    for kind, response in (
        (
            "json",
            fit(
                client,
                {
                    "name": "same-json",
                    "model_type": "RandomForestClassifier",
                    "hyperparameters": hyper,
                },
                X,
                y,
            ),
        ),
        (
            "csv",
            fit_file(
                client,
                {
                    "name": "same-csv",
                    "model_type": "RandomForestClassifier",
                    "hyperparameters": hyper,
                },
                csv_bytes(X, y),
            ),
        ),
        (
            "parquet",
            fit_file(
                client,
                {
                    "name": "same-parquet",
                    "model_type": "RandomForestClassifier",
                    "hyperparameters": hyper,
                },
                parquet_bytes(X, y),
            ),
        ),
    ):
        names[kind] = loaded(client, response)
        expected_names = None if kind == "json" else COLUMNS
        assert response.json()["feature_names"] == expected_names
        assert client.get(f"/models/{names[kind]}").json()["feature_names"] == expected_names

    answers = {kind: predict(client, name, fresh) for kind, name in names.items()}
    assert answers["csv"]["predictions"] == answers["json"]["predictions"]
    assert answers["parquet"]["predictions"] == answers["json"]["predictions"]
    assert answers["csv"]["probabilities"] == answers["json"]["probabilities"]


def test_predict_by_file_and_records_match_columns_by_name(client: httpx.Client) -> None:
    X, y = table()
    config = {
        "name": "by-name",
        "model_type": "LGBMClassifier",
        "hyperparameters": {"n_estimators": 20},
    }
    name = loaded(client, fit_file(client, config, csv_bytes(X, y)))
    fresh, _ = table(n_samples=30, missing=0.2, seed=5)
    expected = predict(client, name, fresh)

    # Reordered columns and an extra one, as CSV and as Parquet.
    order = [3, 0, 4, 2, 1]
    shuffled = np.column_stack([fresh[:, order], np.arange(30)])
    columns = [COLUMNS[i] for i in order] + ["row_id"]
    for data in (
        csv_bytes(shuffled, None, columns),
        parquet_bytes(shuffled, np.zeros(30), columns),
    ):
        answer = predict_file(client, name, data)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == expected["predictions"]
        assert np.allclose(answer.json()["probabilities"], expected["probabilities"])

    missing = predict_file(client, name, csv_bytes(fresh[:, :4], None, COLUMNS[:4]))
    assert missing.status_code == 422
    assert missing.json()["detail"].startswith(
        "missing column(s) 'income': model 'by-name' was trained on 'age'"
    )

    records = [
        {
            "id": i,
            **{c: (None if np.isnan(v) else float(v)) for c, v in zip(COLUMNS, row, strict=True)},
        }
        for i, row in enumerate(fresh)
    ]
    by_records = client.post("/predict", json={"records": records[::-1], "config": {"name": name}})
    assert by_records.status_code == 200, by_records.text
    assert by_records.json()["predictions"] == expected["predictions"][::-1]
    del records[4]["score"]
    gap = client.post("/predict", json={"records": records, "config": {"name": name}})
    assert (gap.status_code, gap.json()["detail"]) == (422, "records[4] has no 'score'")
    both = client.post(
        "/predict", json={"X": [[1.0] * 5], "records": records, "config": {"name": name}}
    )
    assert (both.status_code, both.json()["detail"]) == (422, "send X or records, not both")


def test_records_need_a_model_trained_from_a_file(client: httpx.Client) -> None:
    X, y = table()
    name = loaded(
        client, fit(client, {"name": "json-only", "model_type": "LogisticRegression"}, X, y)
    )
    answer = client.post("/predict", json={"records": [{"age": 1.0}], "config": {"name": name}})
    assert answer.status_code == 422
    assert "without column names: send X" in answer.json()["detail"]


def test_predictions_as_csv(client: httpx.Client) -> None:
    X, y = table()
    labels = np.array(["cat", "dog"])[y]
    config = {"name": "csv-out", "model_type": "LogisticRegression"}
    name = loaded(client, fit_file(client, config, csv_bytes(X, labels)))
    answer = predict_file(client, name, csv_bytes(X[:4], None), accept="text/csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    as_json = predict(client, name, X[:4])
    lines = answer.text.strip().split("\n")
    assert lines[0] == '"prediction","probability_cat","probability_dog"'
    assert [line.split(",")[0].strip('"') for line in lines[1:]] == as_json["predictions"]
    assert [float(line.split(",")[2]) for line in lines[1:]] == pytest.approx(
        [p[1] for p in as_json["probabilities"]]
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"age,height,label\n1,2,0\n3\n4,5,1\n",
            "the file is not a readable CSV table: line 3: Expected 3 columns, got 1",
        ),
        (
            b"age,height,label\n1,2,0\n3,tall,1\n4,5,1\n",
            "column 'height' mixes numbers ('2') and text ('tall', line 3)",
        ),
        (
            b"age,height,label\n1,2,0\n3,4,\n",
            "the target column 'label' has 1 missing label(s), the first on line 3",
        ),
        (
            b"age,height,label\n1,2,0.5\n3,4,1.5\n",
            "the target column 'label' must hold integers or strings, not double",
        ),
        (
            b"age,height,kind\n1,2,0\n",
            "the file has no target column 'label'; its columns are 'age', 'height', 'kind'",
        ),
        (b"age,height,label\n", "the file has a header but no rows"),
        (b"PAR1 but not parquet", "the file is not a readable Parquet table"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00", "the file is not a readable CSV table"),
        (b"age,height,label\n1,inf,0\n2,3,1\n", "column(s) 'height' hold infinity"),
    ],
)
def test_malformed_files_are_422_naming_the_place(
    client: httpx.Client, data: bytes, message: str
) -> None:
    answer = fit_file(client, {"name": "bad-file", "model_type": "LGBMClassifier"}, data)
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith(message)


def test_form_fields_are_checked(client: httpx.Client) -> None:
    data = csv_bytes(*table(n_samples=20))
    config = json.dumps({"name": "form", "model_type": "LogisticRegression"})
    no_target = client.post("/fit", files={"file": ("t.csv", data)}, data={"config": config})
    assert (no_target.status_code, no_target.json()["detail"]) == (
        422,
        "missing form field(s): target",
    )
    bad_json = client.post(
        "/fit", files={"file": ("t.csv", data)}, data={"config": "{", "target": "label"}
    )
    assert bad_json.status_code == 422
    assert bad_json.json()["detail"].startswith("the form field 'config' is not valid JSON")
    bad_config = client.post(
        "/fit",
        files={"file": ("t.csv", data)},
        data={"config": json.dumps({"name": "x"}), "target": "label"},
    )
    assert bad_config.status_code == 422
    assert bad_config.json()["detail"][0]["loc"] == ["body", "config", "model_type"]


def test_a_file_over_the_size_limit_is_413(client: httpx.Client) -> None:
    X, y = table(n_samples=20_000)
    data = csv_bytes(X, y)
    assert len(data) > MAX_BODY_MB * 2**20
    answer = fit_file(client, {"name": "big", "model_type": "LogisticRegression"}, data)
    assert answer.status_code == 413
    assert "MAX_BODY_MB" in answer.json()["detail"]
    assert client.get("/health").status_code == 200
