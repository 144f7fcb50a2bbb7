"""POST /explain on real servers (issue 29): for the five types, binary with string labels
(trained from records, so with column names) and three classes (from a JSON X), on a server
with its default runtime (compiled where it compiles) and on a second server with
INFERENCE_RUNTIME=native over the same store. Explanations are checked against the
predictions they explain: base + contributions, through the sigmoid or softmax, must give
/predict's probabilities on that very server."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from server.explain import explanations
from server.training.cores import allowed_cores
from tests.conftest import ClientFactory
from tests.helpers import MODEL_TYPES, core_plan, explained_probabilities, rows, wait_for
from tests.servers import explainer_processes, uvicorn_server

COLUMNS = ["age", "income", "visits", "score", "constant"]
CONSTANT = 4  # the column every training row has the same value in
ROWS = 240
MAX_EXPLAIN_ROWS = 60
MAX_EXPLAIN_QUEUE = 2
EXPLAIN_TIMEOUT_SECONDS = 8
MAX_EXPLAIN_VALUES = 600  # 40 rows of a three-class model of 5 features: what the tests send
SETUPS = ("binary", "three")


def _table(setup: str) -> tuple[np.ndarray, list[Any]]:
    rng = np.random.default_rng(7 if setup == "binary" else 11)
    X = np.round(rng.normal(size=(ROWS, len(COLUMNS))), 3)
    X[:, CONSTANT] = 2.5
    signal = X[:, 0] + 0.8 * X[:, 1] - 0.5 * X[:, 3]
    if setup == "binary":
        return X, np.where(signal > 0, "churned", "stayed").tolist()
    return X, np.digitize(signal, [-0.6, 0.6]).tolist()


def _with_missing(X: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[::9, 1] = np.nan
    return X


def _name(model_type: str, setup: str) -> str:
    return f"{model_type[:5].lower()}-{setup}"


def _fit_body(model_type: str, setup: str) -> dict[str, Any]:
    X, y = _table(setup)
    if model_type != "LogisticRegression":  # the others learn with missing values too
        X = _with_missing(X)
    small = {} if model_type == "LogisticRegression" else {"n_estimators": 15}
    config = {
        "name": _name(model_type, setup),
        "model_type": model_type,
        "hyperparameters": small,
        "validation_fraction": 0.25,
    }
    if setup == "binary":
        records = [
            {
                column: (None if np.isnan(value) else float(value))
                for column, value in zip(COLUMNS, row, strict=True)
            }
            for row in X
        ]
        return {"records": records, "y": y, "config": config}
    return {"X": rows(X), "y": y, "config": config}


MODELS = [(model_type, setup) for model_type in MODEL_TYPES for setup in SETUPS]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("explain") / "models"


@pytest.fixture(scope="module")
def default_server(store: Path) -> Iterator[tuple[httpx.Client, int, dict[str, Any]]]:
    env = {
        "MAX_INFERENCE_MODELS": "20",
        "MAX_EXPLAIN_ROWS": str(MAX_EXPLAIN_ROWS),
        "MAX_EXPLAIN_QUEUE": str(MAX_EXPLAIN_QUEUE),
        "EXPLAIN_TIMEOUT_SECONDS": str(EXPLAIN_TIMEOUT_SECONDS),
        "MAX_EXPLAIN_VALUES": str(MAX_EXPLAIN_VALUES),
    }
    with (
        uvicorn_server(store, env=env) as (url, process),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        fitted = {}
        for model_type, setup in MODELS:
            answer = client.post("/fit", json=_fit_body(model_type, setup))
            assert answer.status_code == 201, answer.text
            fitted[_name(model_type, setup)] = answer.json()
        _load_all(client)
        yield client, process.pid, fitted


@pytest.fixture(scope="module")
def native_server(
    store: Path, default_server: tuple[httpx.Client, int, dict[str, Any]]
) -> Iterator[httpx.Client]:
    env = {"MAX_INFERENCE_MODELS": "20", "INFERENCE_RUNTIME": "native"}
    with (
        uvicorn_server(store, env=env) as (url, _),
        httpx.Client(base_url=url, timeout=120) as client,
    ):
        _load_all(client)
        yield client


def _load_all(client: httpx.Client) -> None:
    for model_type, setup in MODELS:
        loaded = client.post("/load", json={"config": {"name": _name(model_type, setup)}})
        assert loaded.status_code == 200, loaded.text


def _explain(client: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    answer = client.post("/explain", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def _probabilities_of(explanation: dict[str, Any]) -> np.ndarray:
    """What base + contributions give, mapped into probabilities of every class."""
    totals = np.asarray(explanation["base_values"])[None, :] + np.asarray(
        explanation["contributions"]
    ).sum(axis=2)
    return explained_probabilities(explanation["output"], totals)


def _request_rows(model_type: str, setup: str) -> np.ndarray:
    X, _ = _table(setup)
    X = X[:40]
    return X if model_type == "LogisticRegression" else _with_missing(X)


@pytest.mark.parametrize("runtime", ["default", "native"])
@pytest.mark.parametrize(("model_type", "setup"), MODELS)
def test_explanations_add_up_to_predict(
    model_type: str,
    setup: str,
    runtime: str,
    default_server: tuple[httpx.Client, int, dict[str, Any]],
    native_server: httpx.Client,
) -> None:
    client = default_server[0] if runtime == "default" else native_server
    name, X = _name(model_type, setup), _request_rows(model_type, setup)
    explanation = _explain(client, {"X": rows(X), "config": {"name": name}})
    predicted = client.post(
        "/predict", json={"X": rows(X), "config": {"name": name, "probabilities": True}}
    )
    assert predicted.status_code == 200, predicted.text
    expected = predicted.json()
    n_classes = 2 if setup == "binary" else 3
    contributions = np.asarray(explanation["contributions"])
    assert contributions.shape == (len(X), 1 if n_classes == 2 else 3, len(COLUMNS))
    assert explanation["output"] == (
        "probability" if model_type == "RandomForestClassifier"
        else "log_odds" if n_classes == 2 else "raw"
    )  # fmt: skip
    np.testing.assert_allclose(
        _probabilities_of(explanation), expected["probabilities"], atol=1e-4, rtol=0
    )
    assert explanation["predictions"] == expected["predictions"]
    assert explanation["classes"] == expected["classes"]
    assert (contributions[:, :, CONSTANT] == 0).all()  # a column the model can't use
    assert len(explanation["base_values"]) == contributions.shape[1]


@pytest.mark.parametrize(("model_type", "setup"), MODELS)
def test_the_same_rows_give_the_same_numbers(
    model_type: str, setup: str, default_server: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    client = default_server[0]
    name, X = _name(model_type, setup), _request_rows(model_type, setup)[:10]
    first = _explain(client, {"X": rows(X), "config": {"name": name}})
    assert _explain(client, {"X": rows(X), "config": {"name": name}}) == first
    if setup == "binary":  # trained from records: rows by column name, in any order
        records = [
            {column: value for column, value in reversed(list(zip(COLUMNS, row, strict=True)))}
            for row in rows(X)
        ]
        assert _explain(client, {"records": records, "config": {"name": name}}) == first
        assert first["feature_names"] == COLUMNS
        csv = (
            ",".join(COLUMNS)
            + "\n"
            + "\n".join(
                ",".join("" if value is None else repr(value) for value in row) for row in rows(X)
            )
        )
        from_file = client.post(
            "/explain", files={"file": ("rows.csv", csv)}, data={"config": f'{{"name": "{name}"}}'}
        )
        assert from_file.status_code == 200, from_file.text
        assert from_file.json() == first
    else:
        assert first["feature_names"] == [f"x{i}" for i in range(len(COLUMNS))]


@pytest.mark.parametrize(("model_type", "setup"), MODELS)
def test_every_fit_keeps_its_features_importance(
    model_type: str, setup: str, default_server: tuple[httpx.Client, int, dict[str, Any]]
) -> None:
    client, _, fitted = default_server
    name = _name(model_type, setup)
    shown = client.get(f"/models/{name}").json()["validation"]
    assert shown == fitted[name]["validation"]
    importance = shown["feature_importance"]
    names = COLUMNS if setup == "binary" else [f"x{i}" for i in range(len(COLUMNS))]
    assert sorted(importance) == sorted(names)
    values = list(importance.values())
    assert values == sorted(values, reverse=True)
    assert importance[names[CONSTANT]] == 0
    assert values[0] > 0
    assert shown["importance_rows"] == shown["n_samples"]  # fewer than the cap


def test_refusals(default_server: tuple[httpx.Client, int, dict[str, Any]]) -> None:
    client = default_server[0]
    X = _table("three")[0][:2]
    unknown = client.post("/explain", json={"X": rows(X), "config": {"name": "nobody"}})
    assert unknown.status_code == 404, unknown.text
    name = _name("RandomForestClassifier", "three")
    assert client.post("/unload", json={"config": {"name": name}}).status_code == 200
    try:
        not_loaded = client.post("/explain", json={"X": rows(X), "config": {"name": name}})
        assert not_loaded.status_code == 409, not_loaded.text
        assert "POST /load" in not_loaded.json()["detail"]
    finally:
        assert client.post("/load", json={"config": {"name": name}}).status_code == 200
    too_many = client.post(
        "/explain", json={"X": rows(np.zeros((MAX_EXPLAIN_ROWS + 1, 5))), "config": {"name": name}}
    )
    assert too_many.status_code == 413, too_many.text
    assert "MAX_EXPLAIN_ROWS" in too_many.json()["detail"]
    narrow = client.post("/explain", json={"X": [[1.0, 2.0]], "config": {"name": name}})
    assert narrow.status_code == 422, narrow.text
    assert "expects 5 features" in narrow.json()["detail"]
    linear = _name("LogisticRegression", "three")  # from v5 it fills missing values in
    missing = rows(_with_missing(_table("three")[0][:12]))
    answered = client.post("/explain", json={"X": missing, "config": {"name": linear}})
    assert answered.status_code == 200, answered.text
    assert client.get("/health").status_code == 200


def test_a_version_explains_itself(
    default_server: tuple[httpx.Client, int, dict[str, Any]],
) -> None:
    client = default_server[0]
    name = _name("XGBClassifier", "three")
    body = _fit_body("XGBClassifier", "three")
    body["config"] |= {"new_version": True, "hyperparameters": {"n_estimators": 40}}
    answer = client.post("/fit", json=body)
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"] == 2
    versioned = {"name": name, "version": 2}
    assert client.post("/load", json={"config": versioned}).status_code == 200
    try:
        X = rows(_request_rows("XGBClassifier", "three")[:8])
        explained = {
            v: _explain(client, {"X": X, "config": {"name": name, "version": v}}) for v in (1, 2)
        }
        for version, explanation in explained.items():
            assert explanation["version"] == version
            predicted = client.post(
                "/predict",
                json={"X": X, "config": {"name": name, "version": version, "probabilities": True}},
            ).json()
            np.testing.assert_allclose(
                _probabilities_of(explanation), predicted["probabilities"], atol=1e-4, rtol=0
            )
        assert explained[1]["contributions"] != explained[2]["contributions"]
    finally:
        assert client.post("/unload", json={"config": versioned}).status_code == 200


def test_explanations_run_in_one_process_off_the_servers_core(
    default_server: tuple[httpx.Client, int, dict[str, Any]],
) -> None:
    client, pid, _ = default_server
    X = rows(_request_rows("CatBoostClassifier", "binary")[:3])
    _explain(client, {"X": X, "config": {"name": _name("CatBoostClassifier", "binary")}})
    [explainer] = explainer_processes(pid)  # one, however many explanations ran
    server_core = core_plan()["server_core"]
    assert client.get("/status").json()["training"]["server_core"] == server_core
    cores = set(allowed_cores())
    assert set(explainer.cpu_affinity()) == (
        cores - {server_core} if server_core is not None else cores
    )


# -- defects of the review (issue 37) -------------------------------------------------------
def _explanation_counts(client: httpx.Client) -> dict[str, float]:
    """model_server_explanations_total by outcome, and the queue's gauge as "queued"."""
    counts: dict[str, float] = {}
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == "model_server_explanations_total":
                counts[sample.labels["outcome"]] = sample.value
            elif sample.name == "model_server_explanations_queued":
                counts["queued"] = sample.value
    return counts


def _one_row(model_type: str = "LogisticRegression", setup: str = "binary") -> dict[str, Any]:
    return {
        "X": rows(_request_rows(model_type, setup)[:1]),
        "config": {"name": _name(model_type, setup)},
    }


def test_an_explanation_process_that_died_while_idle_is_replaced(
    default_server: tuple[httpx.Client, int, dict[str, Any]],
) -> None:
    client, pid, _ = default_server
    _explain(client, _one_row())
    [before] = explainer_processes(pid)
    before.kill()
    before.wait(10)
    explained = client.post("/explain", json=_one_row())
    assert explained.status_code == 200, explained.text
    [after] = explainer_processes(pid)
    assert after.pid != before.pid


def test_a_name_removed_and_trained_again_is_explained_by_its_new_model(
    default_server: tuple[httpx.Client, int, dict[str, Any]],
) -> None:
    client = default_server[0]
    X, y = _table("binary")
    body = {"X": rows(X), "y": y, "config": {"name": "again", "model_type": "LogisticRegression"}}
    row = {"X": rows(X[:3]), "config": {"name": "again"}}
    answers = []
    for labels in (y, ["stayed" if label == "churned" else "churned" for label in y]):
        fitted = client.post("/fit", json={**body, "y": labels})
        assert fitted.status_code == 201, fitted.text
        assert client.post("/load", json={"config": {"name": "again"}}).status_code == 200
        explanation = _explain(client, row)
        predicted = client.post(
            "/predict", json={**row, "config": {"name": "again", "probabilities": True}}
        ).json()
        np.testing.assert_allclose(
            _probabilities_of(explanation), predicted["probabilities"], atol=1e-9, rtol=0
        )
        answers.append((fitted.json()["version"], explanation["version"]))
        assert client.post("/remove", json={"config": {"name": "again"}}).status_code == 200
    assert answers == [(1, 1), (2, 2)]  # the number of a removed name is never given again


def test_values_a_model_cant_compute_with_are_refused_as_json(
    default_server: tuple[httpx.Client, int, dict[str, Any]],
) -> None:
    client = default_server[0]
    for model_type, value in (("XGBClassifier", 1e39), ("LogisticRegression", 1e308)):
        X = _request_rows(model_type, "three")[:2].copy()
        X[1, :] = value
        body = {"X": rows(X), "config": {"name": _name(model_type, "three")}}
        refused = client.post("/explain", json=body)
        assert refused.status_code == 422, (model_type, refused.text)
        detail = refused.json()["detail"]
        assert "row(s) [1]" in detail or f"{model_type} can't explain" in detail, detail
        assert "Traceback" not in detail and len(detail) < 600
    assert client.post("/explain", json=_one_row("XGBClassifier", "three")).status_code == 200


def test_the_queue_is_bounded_abandoned_work_is_skipped_and_a_stuck_process_is_replaced(
    default_server: tuple[httpx.Client, int, dict[str, Any]],
) -> None:
    client, pid, _ = default_server
    url = str(client.base_url)
    _explain(client, _one_row())
    [stuck] = explainer_processes(pid)
    before = _explanation_counts(client)
    stuck.suspend()  # SIGSTOP: it computes nothing, and never answers
    try:
        with ThreadPoolExecutor(2) as pool:
            running = pool.submit(httpx.post, url + "/explain", json=_one_row(), timeout=60)
            wait_for(lambda: _explanation_counts(client)["queued"] == 1, 10, "the first to run")
            # The second waits its turn, and its client gives up after a second.
            leaving = pool.submit(httpx.post, url + "/explain", json=_one_row(), timeout=1)
            wait_for(lambda: _explanation_counts(client)["queued"] == 2, 10, "the second to wait")
            full = client.post("/explain", json=_one_row())
            assert full.status_code == 503, full.text
            assert "MAX_EXPLAIN_QUEUE" in full.json()["detail"] and full.headers["Retry-After"]
            with pytest.raises(httpx.TimeoutException):
                leaving.result()
            timed_out = running.result()
        assert timed_out.status_code == 503, timed_out.text
        assert "EXPLAIN_TIMEOUT_SECONDS" in timed_out.json()["detail"]
    finally:
        with contextlib.suppress(psutil.NoSuchProcess):  # killed, and maybe reaped already
            stuck.resume()
    after = _explanation_counts(client)
    assert after["busy"] == before["busy"] + 1
    assert after["abandoned"] == before["abandoned"] + 1  # never computed
    assert after["timed_out"] == before["timed_out"] + 1
    assert after["computed"] == before["computed"]
    _, alive = psutil.wait_procs([stuck], timeout=10)  # killed: gone, or reaped meanwhile
    assert not alive
    _explain(client, _one_row())  # a new process
    assert _explanation_counts(client)["computed"] == before["computed"] + 1


def test_an_answer_larger_than_its_bound_is_refused_before_it_is_computed(
    default_server: tuple[httpx.Client, int, dict[str, Any]],
) -> None:
    """MAX_EXPLAIN_VALUES bounds rows x outputs x features (issue 37, item 6): 50 rows of a
    three-class model are 750 numbers, refused with 413 naming the limit and never computed;
    the same rows of a binary model (one output) are 250, answered."""
    client = default_server[0]
    before = _explanation_counts(client)
    for setup, status in (("three", 413), ("binary", 200)):
        X = rows(_request_rows("XGBClassifier", setup).repeat(2, axis=0)[:50])
        answer = client.post(
            "/explain", json={"X": X, "config": {"name": _name("XGBClassifier", setup)}}
        )
        assert answer.status_code == status, answer.text
    assert (
        "MAX_EXPLAIN_VALUES=600"
        in client.post(
            "/explain",
            json={
                "X": rows(_request_rows("XGBClassifier", "three").repeat(2, axis=0)[:41]),
                "config": {"name": _name("XGBClassifier", "three")},
            },
        ).json()["detail"]
    )
    assert _explanation_counts(client)["computed"] == before["computed"] + 1


@pytest.mark.anyio
async def test_the_answer_is_encoded_off_the_event_loop(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answer's JSON (tens of MB for a large one) is made in a worker thread, never on
    the event loop that serves /predict (issue 37, item 6)."""
    threads: list[str] = []
    encode = explanations.encoded_answer

    def recorded(*args: Any) -> bytes:
        threads.append(threading.current_thread().name)
        return encode(*args)

    monkeypatch.setattr(explanations, "encoded_answer", recorded)
    X, y = _table("binary")
    async with make_client() as client:
        body = {
            "X": rows(X[:60]),
            "y": y[:60],
            "config": {"name": "lr", "model_type": "LogisticRegression"},
        }
        assert (await client.post("/fit", json=body)).status_code == 201
        assert (await client.post("/load", json={"config": {"name": "lr"}})).status_code == 200
        answer = await client.post("/explain", json={"X": rows(X[:3]), "config": {"name": "lr"}})
        assert answer.status_code == 200, answer.text
        assert len(answer.json()["contributions"]) == 3
    assert threads and threading.main_thread().name not in threads
