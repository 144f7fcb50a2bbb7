"""TRAINING_BACKEND=dask against a real cluster: the v1 and jobs
contract on Dask workers, worker death, cancel, limits, workers joining, scheduler loss.
The cluster: devtools/dask_cluster.py."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from distributed import Client

from devtools.dask_cluster import Cluster, dask_cluster
from server.config import Settings
from server.main import create_app
from tests.conftest import ClientFactory
from tests.helpers import MODEL_TYPES, dataset, files_of, fit_body, named, wait_until

pytestmark = pytest.mark.anyio

# A fit that reports progress often and runs for minutes unless stopped.
LONG = {"n_estimators": 200_000, "max_depth": 4}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with dask_cluster(tmp_path_factory.mktemp("dask-logs")) as cluster:
        yield cluster


@pytest.fixture
async def server(cluster: Cluster, make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    cluster.wait_for_workers(2)  # an earlier test may have restarted one
    async with serve(cluster, make_client) as client:
        yield client


def serve(
    cluster: Cluster, make_client: ClientFactory, **overrides: Any
) -> AbstractAsyncContextManager[httpx.AsyncClient]:
    return make_client(training_backend="dask", dask_scheduler_address=cluster.address, **overrides)


async def slots(client: httpx.AsyncClient) -> int:
    return int((await client.get("/status")).json()["training"]["slots"])


async def wait_slots(client: httpx.AsyncClient, count: int, timeout: float = 60) -> None:
    async def reached() -> bool:
        return await slots(client) == count

    await wait_until(reached, timeout=timeout, what=f"{count} Dask slots")


async def start(client: httpx.AsyncClient, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post("/fit?wait=false", json=body)
    assert response.status_code == 202, response.text
    return response.json()


async def wait_progress(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    found: dict[str, Any] = {}

    async def fitting() -> bool:
        found.update((await client.get(f"/jobs/{job_id}")).json())
        return (found["progress"]["fraction"] or 0) > 0

    await wait_until(fitting, timeout=60, what="progress from the Dask worker")
    return found


def test_the_cluster_cannot_import_this_project(cluster: Cluster) -> None:
    """What the tests below show holds for a stock cluster: neither the scheduler nor a worker
    finds `server` (the server sends what a fit needs, pickled by value)."""
    with Client(cluster.address, timeout=30) as client:
        assert client.run_on_scheduler(importlib.util.find_spec, "server") is None
        assert set(client.run(importlib.util.find_spec, "server").values()) == {None}
        assert client.run(importlib.util.find_spec, "sklearn")  # the libraries are there


@pytest.mark.parametrize("labels", ["int", "str"])
async def test_each_model_type_trains_on_dask_and_predicts_here(
    server: httpx.AsyncClient, models_dir: Path, labels: str
) -> None:
    status = (await server.get("/status")).json()["training"]
    assert status["backend"] == "dask"
    assert status["scheduler"].startswith("tcp://127.0.0.1:")
    assert status["slots"] == 2
    for model_type in MODEL_TYPES:
        name = f"{model_type.lower()}-{labels}"
        body = fit_body(name, model_type, labels=labels, n_classes=3, n_samples=90)
        if labels == "str":  # and a text column: its levels travel with the fit, by value
            body["X"] = [[*row, ["red", "green", "blue"][i % 3]] for i, row in enumerate(body["X"])]
        response = await server.post("/fit", json=body)
        assert response.status_code == 201, response.text
        if labels == "str":
            assert response.json()["features"][-1]["levels"] == ["blue", "green", "red"]
        assert response.json()["classes"] == sorted(set(body["y"]))
        # No shared filesystem: the worker sent the model, this server wrote it.
        assert (models_dir / name / "1.joblib").is_file()
        assert (await server.post("/load", json=named(name))).status_code == 200
        answer = (await server.post("/predict", json={"X": body["X"][:5], **named(name)})).json()
        assert set(answer["predictions"]) <= set(body["y"])
        assert (await server.post("/unload", json=named(name))).status_code == 200


async def test_full_cluster_is_503_and_cancel_frees_the_slot_within_2_s(
    server: httpx.AsyncClient, models_dir: Path
) -> None:
    first = await start(server, fit_body("one", "RandomForestClassifier", LONG))
    second = await start(server, fit_body("two", "RandomForestClassifier", LONG))
    refused = await server.post("/fit", json=fit_body("three"))
    assert refused.status_code == 503
    assert refused.headers["Retry-After"] == "5"

    job = await wait_progress(server, first["id"])
    assert 0 < job["progress"]["fraction"] < 1
    assert job["progress"]["iterations_total"] == 200_000
    started = time.monotonic()
    response = await server.post(f"/jobs/{first['id']}/cancel")
    took = time.monotonic() - started
    assert response.status_code == 200 and response.json()["state"] == "cancelled"
    assert took < 2.0, f"cancel took {took:.2f} s"
    print(f"dask cancel, cooperative: {took * 1000:.0f} ms")
    assert (await server.get("/status")).json()["training"]["active"] == 1
    assert files_of(models_dir, "one") == []
    # The slot works again, and the name is free.
    assert (await server.post("/fit", json=fit_body("one"))).status_code == 201
    assert (await server.post(f"/jobs/{second['id']}/cancel")).status_code == 200
    await wait_slots(server, 2)


async def test_a_fit_stuck_in_one_step_is_stopped_by_restarting_its_worker(
    server: httpx.AsyncClient, cluster: Cluster
) -> None:
    # LogisticRegression has no per-iteration hook, and saga with tol=0 runs epoch after
    # epoch (~1.7 ms each here) until max_iter: no stop check for the length of the fit.
    body = fit_body(
        "stuck",
        "LogisticRegression",
        {"solver": "saga", "tol": 0, "max_iter": 1_000_000},
        n_samples=5_000,
        n_features=50,
    )
    job = await start(server, body)
    runs = server.app.state.service.trainer._active  # type: ignore[attr-defined]

    async def running() -> bool:  # the worker has reported the start of the fit
        return job["id"] in runs and runs[job["id"]].run.worker is not None

    await wait_until(running, timeout=60, what="the fit to start on a worker")
    before = set(cluster.worker_pids().values())
    started = time.monotonic()
    response = await server.post(f"/jobs/{job['id']}/cancel")
    took = time.monotonic() - started
    assert response.status_code == 200
    assert took < 2.0, f"cancel took {took:.2f} s"
    print(f"dask cancel, worker restarted: {took * 1000:.0f} ms")

    async def restarted() -> bool:  # the nanny started a new worker process
        try:
            pids = await asyncio.to_thread(cluster.worker_pids)
        except OSError:
            return False
        return len(pids) == 2 and set(pids.values()) != before

    await wait_until(restarted, timeout=60, what="the stuck worker to be restarted")
    await wait_slots(server, 2)


async def test_a_worker_killed_mid_fit_is_500_and_the_slot_comes_back(
    server: httpx.AsyncClient, cluster: Cluster, models_dir: Path
) -> None:
    waiting = asyncio.create_task(
        server.post("/fit", json=fit_body("doomed", "RandomForestClassifier", LONG))
    )

    async def fitting() -> bool:
        jobs = (await server.get("/status")).json()["training"]["jobs"]
        return bool(jobs) and (jobs[0]["progress"]["fraction"] or 0) > 0

    await wait_until(fitting, timeout=60, what="the fit to report progress")
    job_id = (await server.get("/status")).json()["training"]["jobs"][0]["id"]
    worker_address = server.app.state.service.trainer._active[job_id].run.worker  # type: ignore[attr-defined]
    os.kill(cluster.worker_pids()[worker_address], signal.SIGKILL)
    response = await waiting
    assert response.status_code == 500
    assert "Dask worker training 'doomed' died" in response.json()["detail"]
    assert files_of(models_dir, "doomed") == []
    await wait_slots(server, 2)
    assert (await server.post("/fit", json=fit_body("doomed"))).status_code == 201


async def test_limits_on_dask(
    cluster: Cluster, make_client: ClientFactory, models_dir: Path
) -> None:
    cluster.wait_for_workers(2)
    async with serve(cluster, make_client, max_train_seconds=1.5) as server:
        response = await server.post("/fit", json=fit_body("long", "RandomForestClassifier", LONG))
        assert response.status_code == 422
        assert "MAX_TRAIN_SECONDS=1.5" in response.json()["detail"]
        await wait_slots(server, 2)
    async with serve(cluster, make_client, max_train_memory_mb=1) as server:
        response = await server.post("/fit", json=fit_body("big", "RandomForestClassifier", LONG))
        assert response.status_code == 422
        assert "MAX_TRAIN_MEMORY_MB=1" in response.json()["detail"]
        assert (await server.get("/health")).status_code == 200
        assert files_of(models_dir, "long") == files_of(models_dir, "big") == []


async def test_a_worker_joining_adds_a_slot(server: httpx.AsyncClient, cluster: Cluster) -> None:
    assert await slots(server) == 2
    worker = cluster.add_worker()
    try:
        await wait_slots(server, 3)
    finally:
        cluster.stop(worker)
        cluster.workers.remove(worker)
    await wait_slots(server, 2)


async def test_an_unreachable_scheduler_stops_start_up_with_one_line(tmp_path: Path) -> None:
    settings = Settings(
        models_path=tmp_path / "models",
        model_signing_key_file=tmp_path / "key",
        training_backend="dask",
        dask_scheduler_address="tcp://127.0.0.1:9",  # discard port: nothing listens
        dask_connect_seconds=1,
    )
    app = create_app(settings)  # defines the app: nothing is probed yet
    with pytest.raises(SystemExit) as stopped:
        async with app.app.router.lifespan_context(app.app):
            pass
    assert stopped.value.code == 2
    # What uvicorn prints as the start-up's failure (server.http.middleware.fast_predict).
    assert app.state.fatal.startswith("cannot reach the Dask scheduler at DASK_SCHEDULER_ADDRESS=")
    assert "\n" not in app.state.fatal


async def test_losing_the_scheduler_fails_running_jobs_and_recovers_when_it_returns(
    server: httpx.AsyncClient, cluster: Cluster
) -> None:
    job = await start(server, fit_body("orphan", "RandomForestClassifier", LONG))
    await wait_progress(server, job["id"])
    assert cluster.scheduler is not None
    cluster.stop(cluster.scheduler)

    async def failed() -> bool:
        return (await server.get(f"/jobs/{job['id']}")).json()["state"] == "failed"

    await wait_until(failed, timeout=30, what="the running job to fail")
    error = (await server.get(f"/jobs/{job['id']}")).json()["error"]
    assert error["status"] == 500
    assert "Dask scheduler" in error["detail"] or "died" in error["detail"]
    await wait_slots(server, 0)
    refused = await server.post("/fit", json=fit_body("meanwhile"))
    assert refused.status_code == 503
    assert (await server.get("/health")).status_code == 200

    # The scheduler comes back on the same address; the workers find it again (restarted
    # by hand here, as a supervisor would), and so does the server, by itself.
    cluster.start_scheduler()
    for worker in list(cluster.workers):
        if worker.poll() is None:
            cluster.stop(worker)
        cluster.workers.remove(worker)
    cluster.add_worker()
    cluster.add_worker()
    await wait_slots(server, 2, timeout=90)
    assert (await server.post("/fit", json=fit_body("after"))).status_code == 201


@pytest.fixture(params=["local", "dask"])
async def any_backend(
    request: pytest.FixtureRequest, cluster: Cluster, make_client: ClientFactory
) -> AsyncIterator[httpx.AsyncClient]:
    if request.param == "local":
        async with make_client(training_cores=3) as client:
            yield client
        return
    cluster.wait_for_workers(2)
    async with serve(cluster, make_client) as client:
        yield client


async def test_the_jobs_contract_holds_on_both_backends(
    any_backend: httpx.AsyncClient, models_dir: Path
) -> None:
    server = any_backend
    # 202 with Location; the events end with the finished job, whose model is on disk here.
    started = await server.post("/fit?wait=false", json=fit_body("xgb", "XGBClassifier"))
    assert started.status_code == 202
    events = await server.get(started.headers["Location"] + "/events")
    assert events.text.count("event: succeeded") == 1
    assert (models_dir / "xgb" / "1.joblib").is_file()
    cancel = await server.post(started.headers["Location"] + "/cancel")
    assert cancel.status_code == 409 and "has already succeeded" in cancel.json()["detail"]

    # A failed job keeps the 422 a waiting fit gets.
    failing = await start(server, fit_body("bad", "LGBMClassifier", {"num_leaves": -3}))

    async def failed() -> bool:
        return (await server.get(f"/jobs/{failing['id']}")).json()["state"] == "failed"

    await wait_until(failed, timeout=60, what="the bad fit to fail")
    error = (await server.get(f"/jobs/{failing['id']}")).json()["error"]
    assert error["status"] == 422
    assert error["detail"].startswith("LGBMClassifier refused to train 'bad'")

    # Cancel of a waiting fit: 409 for the waiter, no file, the name free again.
    waiting = asyncio.create_task(
        server.post("/fit", json=fit_body("slow", "RandomForestClassifier", LONG))
    )

    async def running() -> bool:
        return bool((await server.get("/status")).json()["training"]["jobs"])

    await wait_until(running, what="the waiting fit's job")
    job_id = (await server.get("/status")).json()["training"]["jobs"][0]["id"]
    assert (await server.post(f"/jobs/{job_id}/cancel")).status_code == 200
    answer = await waiting
    assert answer.status_code == 409 and "was cancelled" in answer.json()["detail"]
    assert files_of(models_dir, "slow") == []
    assert (await server.post("/fit", json=fit_body("slow"))).status_code == 201


async def test_a_new_version_trains_and_is_promoted_on_both_backends(
    any_backend: httpx.AsyncClient, models_dir: Path
) -> None:
    server = any_backend
    assert (await server.post("/fit", json=fit_body("v"))).status_code == 201
    assert (await server.post("/load", json=named("v"))).status_code == 200
    body = fit_body("v", "XGBClassifier")
    body["config"].update(new_version=True, promote=True)
    fitted = await server.post("/fit", json=body)
    assert fitted.status_code == 201, fitted.text
    assert (fitted.json()["version"], fitted.json()["promoted"]) == (2, True)
    assert (models_dir / "v" / "2.joblib").is_file()  # written here, sent by the worker
    answer = await server.post("/predict", json={"X": body["X"][:2], **named("v")})
    assert answer.json()["version"] == 2
    # A cancelled new version leaves nothing of itself, and the name as it was.
    slow = fit_body("v", "RandomForestClassifier", LONG)
    slow["config"]["new_version"] = True
    started = await start(server, slow)
    assert (await server.post(f"/jobs/{started['id']}/cancel")).status_code == 200
    assert sorted(p.name for p in (models_dir / "v").iterdir()) == [
        "1.joblib", "1.json", "2.joblib", "2.json", "2.onnx", "pointers.json",
    ]  # fmt: skip
    assert (await server.get("/models/v")).json()["current_version"] == 2


async def test_an_automl_search_runs_its_candidates_on_the_cluster(
    server: httpx.AsyncClient, models_dir: Path
) -> None:
    X, y = dataset(n_samples=300, n_features=5)
    config = {
        "name": "auto",
        "max_models": 4,
        "model_types": ["XGBClassifier", "RandomForestClassifier"],
    }
    started = await server.post("/automl", json={"X": X, "y": y, "config": config})
    assert started.status_code == 202, started.text
    search: dict[str, Any] = {}

    async def ended() -> bool:
        search.update((await server.get(started.headers["Location"])).json())
        assert search["progress"]["running"] <= 2  # the cluster's two one-thread workers
        return search["state"] != "running"

    await wait_until(ended, timeout=180, what="the search on the cluster")
    assert search["state"] == "succeeded", search["error"]
    assert len(search["leaderboard"]) == 4
    saved = (await server.get("/models/auto")).json()
    assert saved["automl"]["candidate"] == search["leaderboard"][0]["candidate"]
    assert sorted(p.name for p in (models_dir / "auto").iterdir())[:2] == ["1.joblib", "1.json"]
