"""POST /fit: every row of the contract's status table, with real worker processes."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import psutil
import pytest

from tests.conftest import ClientFactory
from tests.helpers import (
    MODEL_TYPES,
    core_plan,
    files_under,
    fit_body,
    models_in,
    named,
    slow_fit_body,
    wait_training,
    wait_until,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("labels", ["int", "str"])
@pytest.mark.parametrize("model_type", MODEL_TYPES)
async def test_each_model_type_trains_and_predicts_original_labels(
    make_client: ClientFactory, models_dir: Path, model_type: str, labels: str
) -> None:
    body = fit_body("m1", model_type, labels=labels, n_classes=3, n_samples=90)
    expected_classes = sorted(set(body["y"]))
    async with make_client() as client:
        response = await client.post("/fit", json=body)
        assert response.status_code == 201, response.text
        answer = response.json()
        assert answer["name"] == "m1"
        assert answer["model_type"] == model_type
        assert answer["status"] == "trained"
        assert answer["n_samples"] == 90
        assert answer["n_features"] == 4
        assert answer["classes"] == expected_classes
        assert answer["train_seconds"] >= 0
        assert (models_dir / "m1" / "1.joblib").is_file()
        assert (models_dir / "m1" / "1.json").is_file()

        assert (await client.post("/load", json=named("m1"))).status_code == 200
        response = await client.post(
            "/predict", json={"X": body["X"], **named("m1", probabilities=True)}
        )
        assert response.status_code == 200, response.text
        prediction = response.json()
        assert prediction["classes"] == expected_classes
        assert set(prediction["predictions"]) <= set(expected_classes)
        assert len(prediction["predictions"]) == 90
        for row in prediction["probabilities"]:
            assert len(row) == 3
            assert sum(row) == pytest.approx(1.0, abs=1e-6)
        # The predicted label is the one of highest probability, mapped back to the original.
        first = prediction["probabilities"][0]
        assert prediction["predictions"][0] == expected_classes[first.index(max(first))]
        # Trained well enough to be right on most of its own training data.
        correct = sum(p == t for p, t in zip(prediction["predictions"], body["y"], strict=True))
        assert correct / 90 > 0.6


async def test_model_type_is_case_insensitive_and_reported_canonically(client) -> None:
    response = await client.post("/fit", json=fit_body("lr", "logisticregression"))
    assert response.status_code == 201
    assert response.json()["model_type"] == "LogisticRegression"


@pytest.mark.parametrize(
    ("model_type", "requested", "forced"),
    [
        (
            "RandomForestClassifier",
            {"n_jobs": 8, "n_estimators": 5},
            {"n_jobs": 1, "n_estimators": 5},
        ),
        ("XGBClassifier", {"nthread": 4, "n_estimators": 5}, {"n_jobs": 1, "n_estimators": 5}),
        ("LGBMClassifier", {"n_jobs": -1}, {"n_jobs": 1}),
        (
            "CatBoostClassifier",
            {"thread_count": -1, "iterations": 5},
            {"thread_count": 1, "iterations": 5},
        ),
    ],
)
async def test_thread_counts_are_forced_to_one_and_reported(
    client, model_type: str, requested: dict, forced: dict
) -> None:
    response = await client.post("/fit", json=fit_body("m", model_type, requested))
    assert response.status_code == 201, response.text
    effective = response.json()["hyperparameters"]
    for key, value in forced.items():
        assert effective[key] == value
    assert not {"nthread"} & set(effective)


async def test_catboost_writes_no_files_of_its_own(
    client, models_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    response = await client.post(
        "/fit", json=fit_body("cb", "CatBoostClassifier", {"iterations": 5})
    )
    assert response.status_code == 201
    assert files_under(models_dir) == ["cb/1.joblib", "cb/1.json", "cb/1.onnx", "cb/pointers.json"]
    assert not list(tmp_path.rglob("catboost_info"))


async def test_duplicate_name_is_409(client) -> None:
    assert (await client.post("/fit", json=fit_body("dup"))).status_code == 201
    response = await client.post("/fit", json=fit_body("dup", "RandomForestClassifier"))
    assert response.status_code == 409
    assert response.json() == {
        "detail": "model 'dup' exists already; POST /remove it first, or train its next "
        'version with "new_version": true'
    }


async def test_name_in_training_is_409_and_full_slots_are_503(client) -> None:
    slow = asyncio.create_task(client.post("/fit", json=slow_fit_body("slow")))
    try:
        await wait_training(client, "slow")
        same_name = await client.post("/fit", json=fit_body("slow"))
        assert same_name.status_code == 409
        assert same_name.json()["detail"] == "model 'slow' is being trained right now"

        refused = await client.post("/fit", json=fit_body("other"))
        assert refused.status_code == 503
        assert refused.headers["Retry-After"] == "5"
        assert "busy" in refused.json()["detail"]
        status = (await client.get("/status")).json()["training"]
        [job] = status.pop("jobs")
        assert job["name"] == "slow"
        assert status == {
            "backend": "local",
            "cores": 2,
            **core_plan(),
            "slots": 1,
            "active": 1,
            "models": ["slow"],
        }
        # The refused fit was never queued: nothing of it exists anywhere.
        assert (await client.get("/models/other")).status_code == 404
    finally:
        slow.cancel()


async def test_503_with_several_slots_all_busy(make_client: ClientFactory) -> None:
    async with make_client(training_cores=3) as client:
        slow = [
            asyncio.create_task(client.post("/fit", json=slow_fit_body(f"s{i}"))) for i in (1, 2)
        ]
        try:
            await wait_training(client, "s1")
            await wait_training(client, "s2")
            refused = await client.post("/fit", json=fit_body("third"))
            assert refused.status_code == 503
            assert (await client.get("/status")).json()["training"]["active"] == 2
        finally:
            for task in slow:
                task.cancel()


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        (lambda b: b.update(config={**b["config"], "name": "../evil"}), "pattern"),
        (lambda b: b.update(config={**b["config"], "name": ""}), "pattern"),
        (lambda b: b.update(config={**b["config"], "name": "a/b"}), "pattern"),
        (lambda b: b.update(config={**b["config"], "name": "x" * 65}), "pattern"),
        (
            lambda b: b.update(config={**b["config"], "model_type": "SVC"}),
            "unknown model_type 'SVC'",
        ),
        (lambda b: b.update(config={**b["config"], "hyperparameters": {"bogus": 1}}), "bogus"),
        (
            lambda b: b.update(config={**b["config"], "hyperparameters": {"C": -1.0}}),
            "'C' parameter",
        ),
        (lambda b: b.update(y=b["y"][:-1]), "X has 60 rows but y has 59 labels"),
        (lambda b: b["X"][3].append(1.0), "ragged"),
        (lambda b: b["X"][0].__setitem__(0, "1.5"), "column 'x0' mixes numbers"),
        (lambda b: b["X"][0].__setitem__(0, {}), "X must hold only numbers or null, found dict"),
        (lambda b: b.update(y=[7] * 60), "at least two distinct classes"),
        (lambda b: b.update(y=[1, "a"] * 30), "y must hold only integers or only strings"),
        (lambda b: b.update(X=[]), "X must be a non-empty list of rows"),
        (lambda b: b.pop("config"), "missing field(s): config"),
        (lambda b: b.update(extra=1), "unknown field(s): extra"),
    ],
)
async def test_bad_input_is_422_with_a_message_naming_it(
    client, models_dir, change, fragment
) -> None:
    body = fit_body("bad")
    change(body)
    response = await client.post("/fit", json=body)
    assert response.status_code == 422, response.text
    assert fragment in str(response.json()["detail"])
    assert not models_in(models_dir)
    assert (await client.get("/status")).json()["training"]["active"] == 0


async def test_non_finite_and_non_json_bodies_are_422(client) -> None:
    body = fit_body("nan")
    content = str(body).replace("'", '"')  # valid JSON text...
    nan_body = content.replace(str(body["X"][0][0]), "NaN", 1)  # ...with one NaN literal
    response = await client.post(
        "/fit", content=nan_body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    response = await client.post(
        "/fit", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 422


async def test_estimator_refusing_the_data_is_422(client) -> None:
    # LightGBM refuses num_leaves < 2 at fit time, inside the worker process.
    response = await client.post(
        "/fit", json=fit_body("lgbm", "LGBMClassifier", {"num_leaves": -3})
    )
    assert response.status_code == 422
    assert response.json()["detail"].startswith("LGBMClassifier refused to train 'lgbm'")
    # The worker is still fine: the next fit on the same slot succeeds.
    assert (await client.post("/fit", json=fit_body("lgbm", "LGBMClassifier"))).status_code == 201


async def test_body_over_the_limit_is_413(make_client: ClientFactory, models_dir: Path) -> None:
    async with make_client(max_body_mb=0.01) as client:
        response = await client.post("/fit", json=fit_body("big", n_samples=2_000, n_features=10))
        assert response.status_code == 413
        assert "MAX_BODY_MB" in response.json()["detail"]

        async def chunks():  # no Content-Length: counted as it arrives
            yield b'{"X": [' + b"[1.0, 2.0]," * 2_000

        response = await client.post(
            "/fit", content=chunks(), headers={"content-type": "application/json"}
        )
        assert response.status_code == 413
        assert (await client.get("/health")).status_code == 200


async def test_worker_killed_mid_fit_is_500_then_the_slot_works(client, models_dir: Path) -> None:
    trainer = client.app.state.service.trainer
    slow = asyncio.create_task(client.post("/fit", json=slow_fit_body("doomed")))
    await wait_training(client, "doomed")
    [pid] = trainer.worker_pids()
    worker = psutil.Process(pid)

    async def fitting() -> bool:  # past the imports of start-up, into the fit itself
        return sum(worker.cpu_times()[:2]) > 2.0

    await wait_until(fitting, what="the worker to be fitting")
    os.kill(pid, signal.SIGKILL)
    response = await slow
    assert response.status_code == 500
    assert "died" in response.json()["detail"]
    assert (await client.get("/status")).json()["training"]["active"] == 0
    assert not [p for p in models_dir.iterdir() if p.name.startswith("doomed")]

    again = await client.post("/fit", json=fit_body("doomed"))
    assert again.status_code == 201
    assert trainer.worker_pids() != [pid]


async def test_the_library_s_warnings_reach_the_answer_and_the_job(client) -> None:
    """Issue 45, item 5: a LogisticRegression that did not converge answered 201 with its
    warning only in the server's log."""
    body = fit_body("unconverged", "LogisticRegression", {"max_iter": 1})
    answer = await client.post("/fit?wait=false", json=body)
    assert answer.status_code == 202
    job_id = answer.json()["id"]

    async def done() -> bool:
        return (await client.get(f"/jobs/{job_id}")).json()["state"] == "succeeded"

    await wait_until(done, 60)
    job = (await client.get(f"/jobs/{job_id}")).json()
    warned = job["model"]["warnings"]
    assert len(warned) == 1 and warned[0].startswith("ConvergenceWarning: "), warned
    assert (await client.get("/models/unconverged")).json()["warnings"] == warned
    quiet = await client.post("/fit", json=fit_body("converged", "LogisticRegression"))
    assert "warnings" not in quiet.json()
