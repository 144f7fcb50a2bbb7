"""Real tables on a real server (issue 38): text columns, a declared categorical column of
numbers, missing levels and missing numbers on an unscaled column, for the five types.

The same rows must get the same answers, to the bit, whatever the request's packaging: JSON
`X`, records, CSV, Parquet with plain and dictionary-encoded strings, columns reordered, one
row at a time or among others; an unseen level must be answered as a missing one (and
counted); the compiled copy must give the estimator's answers at every level; explanations
must add up with one contribution per original column; and what a table can't give must be
a 422 that names it, with nothing saved."""

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
from prometheus_client.parser import text_string_to_metric_families

from devtools.local_server import uvicorn_server
from server.inference.loaded import read_model
from tests.helpers import MODEL_TYPES, explained_probabilities, files_of, server_store

ROWS = 300
CONTRACTS = ["Month-to-month", "One year", "Two year"]
STATES = ["CA", "NY", "TX", "WA", "ma"]  # "ma" and "MA" would be two levels: case counts
ZIPS = ["02139", "10001", "94103", "60601"]
FEATURES = ["tenure", "contract", "state", "monthly", "zip"]
MAX_CATEGORIES = 40
COMPILED = {"RandomForestClassifier", "XGBClassifier"}  # the others serve natively, and say why


def table(seed: int = 3, rows: int = ROWS) -> dict[str, list[Any]]:
    """A churn list: text columns with gaps, an unscaled number with gaps, zip codes."""
    rng = np.random.default_rng(seed)
    tenure = rng.integers(0, 72, rows).astype(float)
    contract = rng.choice(CONTRACTS, rows).astype(object)
    state = rng.choice(STATES, rows).astype(object)
    monthly = np.round(rng.uniform(20, 120, rows) * 1000, 2)  # dollars in thousands of cents
    zips = rng.choice(ZIPS, rows).astype(object)
    contract[::11] = None
    state[::13] = "  " + str(state[0]) + " "  # spaces around a level are trimmed
    monthly[::7] = np.nan
    signal = (contract == "Month-to-month") * 1.5 - tenure / 30 + (zips == "10001") * 0.8
    churn = np.where(signal + rng.normal(0, 0.3, rows) > 0.2, "Yes", "No")
    return {
        "customer_id": [f"c{i:05d}" for i in range(rows)],  # an identifier: ignored
        "tenure": tenure.tolist(),
        "contract": contract.tolist(),
        "state": state.tolist(),
        "monthly": [None if np.isnan(v) else float(v) for v in monthly],
        "zip": zips.tolist(),
        "churn": churn.tolist(),
    }


def csv_bytes(columns: dict[str, list[Any]]) -> bytes:
    """As a spreadsheet writes it: zip codes with their leading zero, blanks for gaps."""
    names = list(columns)
    lines = [",".join(names)]
    for i in range(len(columns[names[0]])):
        cells = ["" if columns[n][i] is None else str(columns[n][i]) for n in names]
        lines.append(",".join(cells))
    return ("\n".join(lines) + "\n").encode()


def parquet_bytes(columns: dict[str, list[Any]], dictionary: bool) -> bytes:
    arrays = {}
    for name, values in columns.items():
        if name in ("tenure", "monthly"):
            arrays[name] = pa.array(values, pa.float64())
        elif dictionary:  # the dictionary in an order of its own, not the model's
            levels = sorted({v for v in values if v is not None}, reverse=True)
            indices = [None if v is None else levels.index(v) for v in values]
            arrays[name] = pa.DictionaryArray.from_arrays(
                pa.array(indices, pa.int32()), pa.array(levels)
            )
        else:
            arrays[name] = pa.array(values, pa.string())
    buffer = io.BytesIO()
    pq.write_table(pa.table(arrays), buffer)
    return buffer.getvalue()


def small(model_type: str) -> dict[str, Any]:
    if model_type == "LogisticRegression":
        return {}
    if model_type == "CatBoostClassifier":
        return {"iterations": 30}
    return {"n_estimators": 20}


def name_of(model_type: str) -> str:
    return f"real-{model_type[:5].lower()}"


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("real-tables") / "models"


@pytest.fixture(scope="module")
def server(store: Path) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    env = {"MAX_INFERENCE_MODELS": "10", "MAX_CATEGORIES": str(MAX_CATEGORIES)}
    training = table()
    with (
        uvicorn_server(store, env=env) as (url, _),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        fitted = {}
        for model_type in MODEL_TYPES:
            config = {
                "name": name_of(model_type),
                "model_type": model_type,
                "hyperparameters": small(model_type),
                "categorical_features": ["zip"],
                "ignore_columns": ["customer_id"],
                "validation_fraction": 0.2,
            }
            answer = client.post(
                "/fit",
                files={"file": ("churn.csv", csv_bytes(training))},
                data={"target": "churn", "config": json.dumps(config)},
            )
            assert answer.status_code == 201, answer.text
            fitted[model_type] = answer.json()
            loaded = client.post("/load", json={"config": {"name": name_of(model_type)}})
            assert loaded.status_code == 200, loaded.text
        yield client, fitted


def request_rows() -> dict[str, list[Any]]:
    """Rows to answer: the training kinds, a missing level, an unseen level, a gap."""
    columns = table(seed=9, rows=24)
    columns["contract"][3] = "Weekly"  # unseen
    columns["state"][5] = None
    columns["zip"][6] = "99999"  # unseen
    del columns["churn"]
    return columns


def predict(client: httpx.Client, name: str, **body: Any) -> tuple[list[Any], np.ndarray]:
    if "file" in body:
        answer = client.post(
            "/predict",
            files={"file": ("rows", body["file"])},
            data={"config": f'{{"name": "{name}", "probabilities": true}}'},
        )
    else:
        answer = client.post(
            "/predict", json={**body, "config": {"name": name, "probabilities": True}}
        )
    assert answer.status_code == 200, answer.text
    result = answer.json()
    return result["predictions"], np.asarray(result["probabilities"])


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_the_same_rows_answer_the_same_in_every_format(
    model_type: str, server: tuple[httpx.Client, dict[str, Any]]
) -> None:
    client, fitted = server
    name = name_of(model_type)
    features = fitted[model_type]["features"]
    assert [f["name"] for f in features] == FEATURES
    kinds = {f["name"]: f["kind"] for f in features}
    assert kinds == {
        "tenure": "numeric",
        "contract": "categorical",
        "state": "categorical",
        "monthly": "numeric",
        "zip": "categorical",
    }
    levels = {f["name"]: f.get("levels") for f in features}
    assert levels["zip"] == sorted(ZIPS) and levels["contract"] == CONTRACTS  # sorted, zeros kept
    assert levels["state"] == sorted(STATES)  # trimmed, case kept

    columns = request_rows()
    n = len(columns["tenure"])
    X = [[columns[f][i] for f in FEATURES] for i in range(n)]
    reordered = {k: columns[k] for k in reversed(list(columns))}
    records = [{k: reordered[k][i] for k in reordered} for i in range(n)]
    labels, expected = predict(client, name, X=X)
    answers = {
        "records": predict(client, name, records=records),
        "csv": predict(client, name, file=csv_bytes(reordered)),
        "parquet": predict(client, name, file=parquet_bytes(reordered, dictionary=False)),
        "parquet dictionary": predict(client, name, file=parquet_bytes(columns, dictionary=True)),
    }
    one_by_one = [predict(client, name, X=[row]) for row in X]
    answers["one row at a time"] = (
        [label for row_labels, _ in one_by_one for label in row_labels],
        np.vstack([probabilities for _, probabilities in one_by_one]),
    )
    for packaging, (got_labels, got) in answers.items():
        assert got_labels == labels, packaging
        assert np.array_equal(got, expected), packaging  # to the bit


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_an_unseen_level_is_answered_as_a_missing_one_and_counted(
    model_type: str, server: tuple[httpx.Client, dict[str, Any]]
) -> None:
    client, _ = server
    name = name_of(model_type)
    before = client.get(f"/models/{name}").json()["unseen_levels"]
    row = [12.0, "Month-to-month", "NY", 55_000.0, "02139"]
    rows = []
    for column, unseen in ((1, "Fortnightly"), (2, "Ontario"), (4, "00000")):
        seen, missing = list(row), list(row)
        seen[column], missing[column] = unseen, None
        rows += [seen, missing]
    labels, probabilities = predict(client, name, X=rows)
    for pair in range(3):
        assert labels[2 * pair] == labels[2 * pair + 1]
        assert np.array_equal(probabilities[2 * pair], probabilities[2 * pair + 1])
    after = client.get(f"/models/{name}").json()["unseen_levels"]
    for column in ("contract", "state", "zip"):
        assert after[column] == before.get(column, 0) + 1
    metrics = text_string_to_metric_families(client.get("/metrics").text)
    counted = {
        sample.labels["name"]: sample.value
        for family in metrics
        if family.name == "model_server_unseen_levels"
        for sample in family.samples
        if sample.name.endswith("_total")
    }
    assert counted[name] >= 3


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_the_compiled_copy_answers_as_the_estimator_at_every_level(
    model_type: str, server: tuple[httpx.Client, dict[str, Any]], store: Path
) -> None:
    client, fitted = server
    name = name_of(model_type)
    described = client.get(f"/models/{name}").json()
    compiled = read_model(server_store(store), name, 1, "auto")
    native = read_model(server_store(store), name, 1, "native")
    if model_type not in COMPILED:  # each says why (CatBoost: categorical features)
        assert described["runtime"] == "native"
        assert fitted[model_type]["compiled"]["reason"].startswith("not compiled: ")
        if model_type == "CatBoostClassifier":
            assert "categorical" in fitted[model_type]["compiled"]["reason"]
        return
    assert described["runtime"] == "onnx", described["runtime_detail"]
    assert compiled.choice.name == "onnx"
    rng = np.random.default_rng(5)
    base = rng.uniform([0, 0, 0, 20_000, 0], [72, 3, 5, 120_000, 4], size=(40, 5))
    rows = [base]
    for column, count in ((1, 3), (2, 5), (4, 4)):
        for code in [*range(count), np.nan]:  # every level, and missing (unseen arrives so)
            at = base.copy()
            at[:, column] = code
            rows.append(at)
    X = np.vstack(rows)
    X[:, [1, 2, 4]] = np.where(np.isnan(X[:, [1, 2, 4]]), np.nan, np.floor(X[:, [1, 2, 4]]))
    X[::5, 0] = np.nan
    got = np.asarray(compiled.predict(X, True)["probabilities"])
    want = np.asarray(native.predict(X, True)["probabilities"])
    assert compiled.predict(X, False)["predictions"] == native.predict(X, False)["predictions"]
    np.testing.assert_allclose(got, want, atol=compiled.choice.tolerance, rtol=0)


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_explanations_add_up_with_one_contribution_per_column(
    model_type: str, server: tuple[httpx.Client, dict[str, Any]]
) -> None:
    client, fitted = server
    name = name_of(model_type)
    columns = request_rows()
    X = [[columns[f][i] for f in FEATURES] for i in range(len(columns["tenure"]))]
    answer = client.post("/explain", json={"X": X, "config": {"name": name}})
    assert answer.status_code == 200, answer.text
    explanation = answer.json()
    assert explanation["feature_names"] == FEATURES
    contributions = np.asarray(explanation["contributions"])
    assert contributions.shape[2] == len(FEATURES)
    totals = np.asarray(explanation["base_values"])[None, :] + contributions.sum(axis=2)
    _, probabilities = predict(client, name, X=X)
    np.testing.assert_allclose(
        explained_probabilities(explanation["output"], totals), probabilities, atol=1e-5
    )
    importance = fitted[model_type]["validation"]["feature_importance"]
    assert sorted(importance) == sorted(FEATURES)


REFUSALS = [
    (
        {"categorical_features": ["zip"]},
        lambda t: {**t, "customer_id": t["customer_id"]},
        "customer_id",  # an identifier: more than MAX_CATEGORIES levels
    ),
    (
        {"categorical_features": ["zip"], "ignore_columns": ["customer_id"]},
        lambda t: {**t, "tenure": ["abc" if i == 4 else v for i, v in enumerate(t["tenure"])]},
        "mixes numbers",
    ),
    (
        {"categorical_features": ["zip", "monthly"], "ignore_columns": ["customer_id"]},
        lambda t: t,
        "fraction",
    ),
    (
        {"categorical_features": ["zip", "postcode"], "ignore_columns": ["customer_id"]},
        lambda t: t,
        "postcode",
    ),
]


@pytest.mark.parametrize(("config", "change", "named"), REFUSALS)
def test_what_a_table_cant_give_is_a_422_naming_it_and_nothing_is_saved(
    config: dict[str, Any],
    change: Any,
    named: str,
    server: tuple[httpx.Client, dict[str, Any]],
    store: Path,
) -> None:
    client, _ = server
    body = {"name": "refused", "model_type": "XGBClassifier", **config}
    answer = client.post(
        "/fit",
        files={"file": ("t.csv", csv_bytes(change(table())))},
        data={"target": "churn", "config": json.dumps(body)},
    )
    assert answer.status_code == 422, answer.text
    assert named in answer.json()["detail"]
    assert client.get("/models/refused").status_code == 404
    assert not files_of(store, "refused")


def test_the_libraries_own_categorical_parameters_point_to_categorical_features(
    server: tuple[httpx.Client, dict[str, Any]],
) -> None:
    client, _ = server
    for model_type, parameter in (
        ("CatBoostClassifier", "cat_features"),
        ("LGBMClassifier", "categorical_feature"),
    ):
        body = {
            "X": [[1.0, "a"], [2.0, "b"]],
            "y": [0, 1],
            "config": {"name": "p", "model_type": model_type, "hyperparameters": {parameter: [1]}},
        }
        answer = client.post("/fit", json=body)
        assert answer.status_code == 422
        assert "categorical_features" in answer.json()["detail"]


def parquet_of(columns: dict[str, pa.Array]) -> bytes:
    sink = io.BytesIO()
    pq.write_table(pa.table(columns), sink)
    return sink.getvalue()


@pytest.mark.parametrize(
    ("column", "kind"),
    [
        (pa.array([20000 + i for i in range(40)], pa.date32()), "date32"),
        (pa.array([1_700_000_000_000 + i for i in range(40)], pa.timestamp("ms")), "timestamp"),
        (pa.array(list(range(40)), pa.duration("s")), "duration"),
        (pa.array([[i] for i in range(40)]), "list"),
        (pa.array([bytes([i]) for i in range(40)]), "bytes"),
    ],
)
def test_a_column_of_a_type_no_model_learns_is_a_422_naming_it(
    column: pa.Array, kind: str, server: tuple[httpx.Client, dict[str, Any]], store: Path
) -> None:
    """Review item 2: a date (or a list, bytes ...) column of a Parquet file was a 500."""
    client, _ = server
    numbers = pa.array(np.arange(40, dtype=float))
    target = pa.array(["a", "b"] * 20)
    body = parquet_of({"x": numbers, "when": column, "y": target})
    config = {"name": "dated", "model_type": "LGBMClassifier"}
    search = {"name": "dated", "model_types": ["LGBMClassifier"], "max_models": 1}
    for route, sent in (("/fit", config), ("/automl", search)):
        answer = client.post(
            route,
            files={"file": ("t.parquet", body)},
            data={"target": "y", "config": json.dumps(sent)},
        )
        assert answer.status_code == 422, answer.text
        detail = answer.json()["detail"]
        assert "'when'" in detail and kind in detail and "ignore_columns" in detail, detail
    assert not files_of(store, "dated")
    ignored = {**config, "ignore_columns": ["when"]}
    answer = client.post(
        "/fit", files={"file": ("t.parquet", body)},
        data={"target": "y", "config": json.dumps(ignored)},
    )  # fmt: skip
    assert answer.status_code == 201, answer.text
    answer = client.post(  # and at /predict, the same refusal
        "/predict", files={"file": ("t.parquet", body)},
        data={"config": json.dumps({"name": "real-lgbmc"})},
    )  # fmt: skip
    assert answer.status_code == 422 and "'tenure'" in answer.json()["detail"]
    assert client.post("/remove", json={"config": {"name": "dated"}}).status_code == 200


def test_integers_beyond_a_double_s_precision_answer_as_their_json_numbers(
    server: tuple[httpx.Client, dict[str, Any]],
) -> None:
    """Review item 2: a uint64 above 2**63 was a 500; it rounds to a double as JSON does."""
    client, _ = server
    big = [2**63 + 4096 * i for i in range(40)]
    body = parquet_of({"x": pa.array(big, pa.uint64()), "y": pa.array(["a", "b"] * 20)})
    config = {"name": "big-ints", "model_type": "LogisticRegression"}
    fitted = client.post(
        "/fit", files={"file": ("t.parquet", body)},
        data={"target": "y", "config": json.dumps(config)},
    )  # fmt: skip
    assert fitted.status_code == 201, fitted.text
    assert client.post("/load", json={"config": {"name": "big-ints"}}).status_code == 200
    rows = parquet_of({"x": pa.array(big[:3], pa.uint64())})
    by_file = client.post(
        "/predict", files={"file": ("r.parquet", rows)},
        data={"config": json.dumps({"name": "big-ints", "probabilities": True})},
    )  # fmt: skip
    by_json = client.post(
        "/predict", json={"records": [{"x": v} for v in big[:3]],
                          "config": {"name": "big-ints", "probabilities": True}},
    )  # fmt: skip
    assert by_file.status_code == by_json.status_code == 200, (by_file.text, by_json.text)
    assert by_file.json()["probabilities"] == by_json.json()["probabilities"]
    assert client.post("/remove", json={"config": {"name": "big-ints"}}).status_code == 200


@pytest.mark.parametrize(
    ("body", "column", "named"),
    [
        (b"zip,tenure,y\n1e400,1,a\n7,2,b\n" * 20, "'zip'", "beyond the range of a double"),
        (b"zip,tenure,y\n7,40\xb08,a\n7,2,b\n" * 20, "'tenure'", "not UTF-8"),
    ],
)
def test_a_categorical_cell_beyond_a_double_or_not_utf8_is_a_422(
    body: bytes, column: str, named: str, server: tuple[httpx.Client, dict[str, Any]]
) -> None:
    """Review item 10: `1e400` in a declared categorical column, or a Latin-1 byte, were
    500s at /fit; infinity in a Parquet column was a 500 at /predict."""
    client, _ = server
    config = {"name": "odd", "model_type": "XGBClassifier", "categorical_features": ["zip"]}
    answer = client.post(
        "/fit", files={"file": ("t.csv", body)}, data={"target": "y", "config": json.dumps(config)}
    )
    assert answer.status_code == 422, answer.text
    assert column in answer.json()["detail"] and named in answer.json()["detail"]
    rows = table(seed=9, rows=2)
    del rows["churn"]
    infinite = {k: pa.array(v) for k, v in rows.items() if k != "zip"}
    infinite["zip"] = pa.array([float("inf"), 2139.0])
    answer = client.post(
        "/predict", files={"file": ("r.parquet", parquet_of(infinite))},
        data={"config": json.dumps({"name": "real-xgbcl"})},
    )  # fmt: skip
    assert answer.status_code == 422 and "'zip'" in answer.json()["detail"], answer.text
    json_body = b'{"records": [{"zip": 1e400}], "config": {"name": "real-xgbcl"}}'
    answer = client.post(
        "/predict", content=json_body, headers={"content-type": "application/json"}
    )
    assert answer.status_code == 422, answer.text
    assert "with a fraction" not in str(answer.json()["detail"])


def test_every_refused_column_is_named_in_one_answer_and_nan_asks_for_null(
    server: tuple[httpx.Client, dict[str, Any]],
) -> None:
    """Issue 45, item 6: four number-like text columns took four 422s to find; a JSON
    NaN got `unexpected character`."""
    client, _ = server
    header = "a,b,c,d,e,y\n"
    lines = "".join(f"{i}.5,{i},{i},{i},{i},{'yn'[i % 2]}\n" for i in range(20))
    typos = header + lines + "x1,x2,x3,x4,5,y\n"
    config = {"name": "typos", "model_type": "XGBClassifier"}
    answer = client.post(
        "/fit", files={"file": ("t.csv", typos.encode())},
        data={"target": "y", "config": json.dumps(config)},
    )  # fmt: skip
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    assert detail.startswith("4 columns are refused") and all(
        f"'{name}'" in detail for name in "abcd"
    ), detail
    body = (
        b'{"X": [[1.0, NaN]], "y": [1], "config": {"name": "nan", "model_type": "XGBClassifier"}}'
    )
    for route in ("/fit", "/predict"):
        sent = client.post(route, content=body, headers={"content-type": "application/json"})
        assert sent.status_code == 422 and "send null" in sent.json()["detail"], sent.text
