"""Training jobs (API-v2 "Training jobs"): async fits, jobs, events, cancel and limits, with
real worker processes behind an in-process app."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from server.http.routes.training import job_events
from server.training.jobs import Job
from tests.conftest import ClientFactory
from tests.helpers import files_of, fit_body, models_in, named, slow_fit_body, wait_until

pytestmark = pytest.mark.anyio


async def start(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/fit", params={"wait": "false"}, json=body)
    assert response.status_code == 202, response.text
    return response.json()


async def job_of(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    response = await client.get(f"/jobs/{job_id}")
    assert response.status_code == 200
    return response.json()


async def wait_state(client: httpx.AsyncClient, job_id: str, *states: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def reached() -> bool:
        found.update(await job_of(client, job_id))
        return found["state"] in states

    await wait_until(reached, what=f"job {job_id} to be {states}")
    return found


async def wait_fitting(client: httpx.AsyncClient, job_id: str) -> list[float]:
    """Wait until the job reports progress past 0 (it is inside the fit); the fractions seen."""
    seen: list[float] = []

    async def fitting() -> bool:
        fraction = (await job_of(client, job_id))["progress"]["fraction"]
        seen.append(fraction)
        return fraction > 0

    await wait_until(fitting, what=f"job {job_id} to report progress")
    return seen


async def test_async_fit_is_202_with_location_and_the_job_ends_with_the_model(
    client: httpx.AsyncClient,
) -> None:
    body = fit_body("rf", "RandomForestClassifier", {"n_estimators": 20, "random_state": 0})
    job = await start(client, body)
    assert job["name"] == "rf"
    assert job["model_type"] == "RandomForestClassifier"
    assert job["state"] == "running"
    assert job["finished_at"] is None and job["error"] is None and job["model"] is None
    assert len(job["id"]) == 16

    finished = await wait_state(client, job["id"], "succeeded")
    assert finished["progress"] == {"fraction": 1.0, "iterations_done": 20, "iterations_total": 20}
    assert finished["eta_seconds"] == 0.0
    assert finished["finished_at"] is not None
    model = (await client.get("/models/rf")).json()
    assert finished["model"]["classes"] == model["classes"]
    assert finished["model"]["hyperparameters"] == model["hyperparameters"]
    assert model["status"] == "trained"

    # The events of a finished job: one event, the finished job, then the stream ends.
    events = await client.get(f"/jobs/{job['id']}/events")
    assert events.status_code == 200
    assert events.headers["content-type"].startswith("text/event-stream")
    assert events.text.count("data:") == 1
    assert "event: succeeded" in events.text

    # The Location header, on a second job; /jobs lists newest first.
    response = await client.post("/fit?wait=false", json=fit_body("lr"))
    assert response.headers["Location"] == f"/jobs/{response.json()['id']}"
    await wait_state(client, response.json()["id"], "succeeded")
    listed = (await client.get("/jobs")).json()["jobs"]
    assert [j["name"] for j in listed] == ["lr", "rf"]
    # LogisticRegression offers no progress measure: null, and so is its ETA.
    assert listed[0]["progress"] == {
        "fraction": None,
        "iterations_done": None,
        "iterations_total": None,
    }


async def test_unknown_jobs_are_404(client: httpx.AsyncClient) -> None:
    for response in (
        await client.get("/jobs/0123456789abcdef"),
        await client.get("/jobs/nope/events"),
        await client.post("/jobs/nope/cancel"),
    ):
        assert response.status_code == 404
        assert response.headers["content-type"] == "application/json"
        assert "does not exist" in response.json()["detail"]


async def test_async_fit_refusals_come_first_and_at_once(
    make_client: ClientFactory, models_dir: Path
) -> None:
    async with make_client(max_body_mb=1.0) as client:
        slow = await start(client, slow_fit_body("slow"))
        same_name = await client.post("/fit?wait=false", json=slow_fit_body("slow"))
        assert same_name.status_code == 409
        assert same_name.json()["detail"] == "model 'slow' is being trained right now"
        full = await client.post("/fit?wait=false", json=fit_body("other"))
        assert full.status_code == 503
        assert full.headers["Retry-After"] == "5"
        bad = await client.post("/fit?wait=false", json=fit_body("x", "NoSuchModel"))
        assert bad.status_code == 422
        assert "unknown model_type 'NoSuchModel'" in bad.json()["detail"]
        too_big = await client.post(
            "/fit?wait=false", json=fit_body("big", n_samples=5_000, n_features=20)
        )
        assert too_big.status_code == 413
        # None of the refused fits became a job.
        assert [j["name"] for j in (await client.get("/jobs")).json()["jobs"]] == ["slow"]

        # While it trains: GET /models/{name} and GET /status show the job and its progress.
        await wait_fitting(client, slow["id"])
        model = (await client.get("/models/slow")).json()
        assert model["status"] == "training"
        assert model["job_id"] == slow["id"]
        assert 0 < model["progress"]["fraction"] < 1
        assert model["progress"]["iterations_total"] == 20_000
        [running] = (await client.get("/status")).json()["training"]["jobs"]
        assert running["id"] == slow["id"] and running["name"] == "slow"
        cancelled = await client.post(f"/jobs/{slow['id']}/cancel")
        assert cancelled.status_code == 200


async def test_cancel_frees_the_slot_kills_the_process_and_leaves_nothing(
    client: httpx.AsyncClient, models_dir: Path
) -> None:
    trainer = client.app.state.service.trainer
    job = await start(client, slow_fit_body("doomed"))
    fractions = await wait_fitting(client, job["id"])
    [pid] = trainer.worker_pids()
    process = psutil.Process(pid)

    response = await client.post(f"/jobs/{job['id']}/cancel")
    assert response.status_code == 200
    answer = response.json()
    assert answer["state"] == "cancelled"
    assert answer["finished_at"] is not None
    # When cancel answers, the slot is already free and nothing of the fit is on disk.
    status = (await client.get("/status")).json()["training"]
    assert (status["active"], status["models"], status["jobs"]) == (0, [], [])
    assert files_of(models_dir, "doomed") == []
    assert not process.is_running() or process.status() == psutil.STATUS_ZOMBIE
    assert (await client.get("/models/doomed")).status_code == 404
    # Progress never went backwards while it ran.
    assert fractions == sorted(fractions)

    # Cancel again: 409, and the body says how it ended.
    again = await client.post(f"/jobs/{job['id']}/cancel")
    assert again.status_code == 409
    assert "has already been cancelled" in again.json()["detail"]
    # The name is free, and the slot trains again (in a new process).
    assert (await client.post("/fit", json=fit_body("doomed"))).status_code == 201
    assert trainer.worker_pids() != [pid]


async def test_cancel_of_a_waiting_fit_answers_it_409(client: httpx.AsyncClient) -> None:
    waiting = asyncio.create_task(client.post("/fit", json=slow_fit_body("sync")))
    status: dict[str, Any] = {}

    async def has_job() -> bool:
        status.update((await client.get("/status")).json()["training"])
        return bool(status["jobs"])

    await wait_until(has_job, what="the waiting fit's job")
    job_id = status["jobs"][0]["id"]
    assert (await client.post(f"/jobs/{job_id}/cancel")).status_code == 200
    response = await waiting
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f"the training of 'sync' (job {job_id}) was cancelled; nothing was saved"
    )


async def test_cancel_after_success_and_a_failed_fit_keeping_its_422(
    client: httpx.AsyncClient,
) -> None:
    done = await start(client, fit_body("ok"))
    await wait_state(client, done["id"], "succeeded")
    response = await client.post(f"/jobs/{done['id']}/cancel")
    assert response.status_code == 409
    assert "has already succeeded" in response.json()["detail"]
    assert (await client.get("/models/ok")).json()["status"] == "trained"

    failing = await start(client, fit_body("bad", "LGBMClassifier", {"num_leaves": -3}))
    failed = await wait_state(client, failing["id"], "failed")
    assert failed["error"]["status"] == 422
    assert failed["error"]["detail"].startswith("LGBMClassifier refused to train 'bad'")
    assert failed["model"] is None
    response = await client.post(f"/jobs/{failing['id']}/cancel")
    assert response.status_code == 409
    assert "has already failed (422)" in response.json()["detail"]
    assert (await client.get("/models/bad")).status_code == 404


async def test_time_limits_fail_the_job_with_422_naming_the_limit(
    make_client: ClientFactory, models_dir: Path
) -> None:
    async with make_client(max_train_seconds=1.5) as client:
        response = await client.post("/fit", json=slow_fit_body("long"))
        assert response.status_code == 422
        assert response.json()["detail"] == (
            "the training of 'long' was stopped after 1.5 s, the limit set by "
            "MAX_TRAIN_SECONDS=1.5; nothing was saved"
        )
        # A fit may ask for less than the server's limit, never for more.
        body = slow_fit_body("shorter")
        body["config"]["max_seconds"] = 0.5
        job = await start(client, body)
        failed = await wait_state(client, job["id"], "failed")
        assert failed["error"] == {
            "status": 422,
            "detail": "the training of 'shorter' was stopped after 0.5 s, the limit set by "
            "max_seconds=0.5; nothing was saved",
        }
        body = slow_fit_body("longer")
        body["config"]["max_seconds"] = 60
        response = await client.post("/fit", json=body)
        assert "MAX_TRAIN_SECONDS=1.5" in response.json()["detail"]

        assert (await client.get("/status")).json()["training"]["active"] == 0
        assert models_dir.exists() and models_in(models_dir) == []
        # The server trains on: a slot takes the next fit. Whether a small fit ends within
        # 1.5 s depends on the machine that day, so either ending is the server working.
        job = await start(client, fit_body("quick"))
        ended = await wait_state(client, job["id"], "succeeded", "failed")
        assert ended["state"] == "succeeded" or ended["error"] == {
            "status": 422,
            "detail": "the training of 'quick' was stopped after 1.5 s, the limit set by "
            "MAX_TRAIN_SECONDS=1.5; nothing was saved",
        }, ended
        bad = fit_body("x")
        bad["config"]["max_seconds"] = 0
        assert (await client.post("/fit", json=bad)).status_code == 422


async def test_memory_limit_stops_a_growing_fit_and_the_server_goes_on(
    make_client: ClientFactory, models_dir: Path
) -> None:
    # What an idle worker holds (the five libraries, preloaded) varies by platform, so the
    # limit is set just above what this machine's worker holds after a small fit.
    async with make_client() as client:
        assert (await client.post("/fit", json=fit_body("probe"))).status_code == 201
        [pid] = client.app.state.service.trainer.worker_pids()
        idle_mb = psutil.Process(pid).memory_info().rss / 2**20
    limit = round(idle_mb + 40)
    async with make_client(max_train_memory_mb=limit) as client:
        # 40,000 x 150 features (0s and 1s: a small body) is 48 MB of float64 in the worker,
        # which grows past the limit as soon as the data has arrived.
        rows = 40_000
        X = [[(i * 7 + j) % 2 for j in range(150)] for i in range(rows)]
        y = [i % 2 for i in range(rows)]
        config = {
            "name": "hungry",
            "model_type": "RandomForestClassifier",
            "hyperparameters": {"n_estimators": 5000},
        }
        response = await client.post("/fit", json={"X": X, "y": y, "config": config})
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail.startswith("the training of 'hungry' was stopped: its process used ")
        assert detail.endswith(f"MB, over MAX_TRAIN_MEMORY_MB={limit}; nothing was saved")
        assert (await client.get("/health")).status_code == 200
        assert (await client.get("/status")).json()["training"]["active"] == 0
        assert files_of(models_dir, "hungry") == []
        assert (await client.post("/fit", json=fit_body("small"))).status_code == 201


async def test_remove_all_during_async_jobs_leaves_them_running(
    client: httpx.AsyncClient, models_dir: Path
) -> None:
    assert (await client.post("/fit", json=fit_body("done"))).status_code == 201
    job = await start(client, slow_fit_body("busy"))
    response = await client.post("/remove_all")
    assert response.json() == {"removed": ["done"], "training": ["busy"]}
    assert (await job_of(client, job["id"]))["state"] == "running"
    assert (await client.post(f"/jobs/{job['id']}/cancel")).status_code == 200
    assert models_in(models_dir) == []


CHECK_WITHOUT_SERVER = """
import sys
sys.modules["server"] = None  # any reference to this project's modules fails to unpickle
import joblib, numpy as np
bundle = joblib.load(sys.argv[1])
estimator = bundle["estimator"]
params = estimator.get_params()
assert not params.get("callbacks"), params.get("callbacks")
assert not params.get("warm_start"), "warm_start left on"
print(len(estimator.predict(np.zeros((3, 4)))))
"""


@pytest.mark.parametrize(
    ("model_type", "hyperparameters"),
    [
        ("RandomForestClassifier", {"n_estimators": 30}),
        ("XGBClassifier", {"n_estimators": 30}),
        ("LGBMClassifier", {"n_estimators": 30}),
        ("CatBoostClassifier", {"iterations": 30}),
    ],
)
async def test_a_saved_model_carries_no_progress_hook(
    client: httpx.AsyncClient, models_dir: Path, model_type: str, hyperparameters: dict[str, Any]
) -> None:
    response = await client.post("/fit", json=fit_body("m", model_type, hyperparameters))
    assert response.status_code == 201
    assert (
        response.json()["hyperparameters"]
        == (await client.get("/models/m")).json()["hyperparameters"]
    )
    result = subprocess.run(
        [sys.executable, "-c", CHECK_WITHOUT_SERVER, str(models_dir / "m" / "1.joblib")],
        capture_output=True,
        text=True,
        timeout=120,
        cwd="/",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "3"


async def test_fifty_cancels_leave_no_stray_process_and_no_descriptor(
    client: httpx.AsyncClient, models_dir: Path
) -> None:
    this = psutil.Process(os.getpid())
    trainer = client.app.state.service.trainer
    assert (await client.post("/fit", json=fit_body("warm"))).status_code == 201
    descriptors_before = this.num_fds()
    for _ in range(50):
        job = await start(client, slow_fit_body("again"))
        assert (await client.post(f"/jobs/{job['id']}/cancel")).status_code == 200
    assert (await client.post("/fit", json=fit_body("after"))).status_code == 201

    children = this.children(recursive=True)
    alive = [p for p in children if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    workers = [p for p in alive if "spawn_main" in " ".join(p.cmdline())]
    # One slot: one worker process, plus the resource tracker multiprocessing keeps.
    assert [p.pid for p in workers] == trainer.worker_pids()
    assert len(alive) <= 2, [p.cmdline() for p in alive]
    assert this.num_fds() <= descriptors_before + 2
    assert files_of(models_dir, "again") == []
    assert [j["state"] for j in (await client.get("/jobs")).json()["jobs"]][:3] == [
        "succeeded",
        "cancelled",
        "cancelled",
    ]
    assert (await client.post("/load", json=named("after"))).status_code == 200


async def test_a_job_that_ends_while_an_event_is_sent_still_gets_its_last_event() -> None:
    """The stream yields a running event; the job succeeds before the stream resumes (as
    when it ends while that event is written): the next event must be the finished job."""
    job = Job("j", "XGBClassifier", reports_progress=True)
    job.start()
    stream = job_events(job)
    first = await anext(stream)
    assert first.event == "running"
    job.succeed({"name": "j"})
    last = await asyncio.wait_for(anext(stream), timeout=5)
    assert (last.event, last.data["state"]) == ("succeeded", "succeeded")
    with pytest.raises(StopAsyncIteration):
        await anext(stream)
