"""A real server killed mid-write, orphaned workers, and clients that hang up."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers import dataset, fit_body, named, slow_fit_body, wait_training, wait_until
from tests.servers import STOP_TIMEOUT, training_processes, uvicorn_server, wait_gone

pytestmark = pytest.mark.anyio


async def test_server_killed_while_training_and_while_writing(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    # A forest of ~70 MB (one feature per split: full-depth trees, trained in seconds): its
    # write takes long enough to be caught in the act.
    big = fit_body(
        "writing",
        "RandomForestClassifier",
        {"n_estimators": 120, "max_features": 1},
        n_samples=20_000,
        n_features=20,
    )
    # Not compiled: converting a forest this size would add seconds before its write.
    native = {"INFERENCE_RUNTIME": "native"}
    with uvicorn_server(models_dir, training_cores=3, env=native) as (url, server):
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            for name in ("done1", "done2"):
                assert (
                    await client.post("/fit", json=fit_body(name, "XGBClassifier"))
                ).status_code == 201
            writing = asyncio.create_task(client.post("/fit", json=big))
            training = asyncio.create_task(client.post("/fit", json=slow_fit_body("training")))
            await wait_training(client, "training")

            def temporary_files() -> list[str]:
                folder = models_dir / "writing"  # the name's folder, made by the write
                if not folder.exists():
                    return []
                return [e.name for e in os.scandir(folder) if e.name.endswith(".tmp")]

            deadline = time.monotonic() + 120
            while not temporary_files():  # a tight poll: the write lasts a fraction of a second
                assert not writing.done(), "the write finished before it could be caught"
                assert time.monotonic() < deadline
                await asyncio.sleep(0.002)
            workers = training_processes(server.pid)
            server.send_signal(signal.SIGKILL)
            server.wait(STOP_TIMEOUT)
            caught = temporary_files()
            await wait_gone(workers)
            for task in (writing, training):
                with pytest.raises(httpx.HTTPError):
                    await task
    assert caught, "the kill did not land during the write"

    with uvicorn_server(models_dir) as (url, _):
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            listed = {
                m["name"]: m["status"] for m in (await client.get("/models")).json()["models"]
            }
            # Every model that answered 201 is there and loads; what never answered is gone.
            assert listed == {"done1": "trained", "done2": "trained"}
            for name in listed:
                assert (await client.post("/load", json=named(name))).status_code == 200
            for name in ("writing", "training"):
                assert (await client.post("/fit", json=fit_body(name))).status_code == 201
    leftovers = sorted(str(p) for p in models_dir.rglob(".*"))
    assert leftovers == []


@pytest.mark.parametrize(
    ("model_type", "hyperparameters"),
    [
        ("RandomForestClassifier", {"n_estimators": 20_000}),
        ("CatBoostClassifier", {"iterations": 200_000}),
    ],
)
async def test_orphaned_workers_stop_within_seconds(
    tmp_path: Path, model_type: str, hyperparameters: dict
) -> None:
    models_dir = tmp_path / "models"
    with uvicorn_server(models_dir) as (url, server):
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            body = fit_body("orphan", model_type, hyperparameters, n_samples=2_000, n_features=20)
            fitting = asyncio.create_task(client.post("/fit", json=body))
            await wait_training(client, "orphan")
            [worker] = training_processes(server.pid)

            async def busy() -> bool:  # past start-up, inside the library's fit
                return sum(worker.cpu_times()[:2]) > 2.5

            await wait_until(busy, what="the worker to be fitting")
            server.kill()
            server.wait(STOP_TIMEOUT)
            seconds = await wait_gone([worker], timeout=5)
            print(f"{model_type}: orphaned worker gone {seconds:.2f} s after the server died")
            with pytest.raises(httpx.HTTPError):
                await fitting
    assert not (models_dir / "orphan" / "1.json").exists()


async def test_client_hanging_up_during_fit_and_predict_leaves_state_right(tmp_path: Path) -> None:
    X, _ = dataset(n_samples=20_000, n_features=20)
    medium = fit_body(
        "medium", "RandomForestClassifier", {"n_estimators": 400}, n_samples=5_000, n_features=20
    )
    with uvicorn_server(tmp_path / "models") as (url, server):
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            async with httpx.AsyncClient(base_url=url, timeout=120) as impatient:
                hung_up = asyncio.create_task(impatient.post("/fit", json=medium))
                await wait_training(client, "medium")
                hung_up.cancel()
            # The training goes on and is kept; its slot stays taken until it is done.
            assert (await client.get("/status")).json()["training"]["models"] == ["medium"]

            async def done() -> bool:
                return (await client.get("/status")).json()["training"]["active"] == 0

            await wait_until(done, what="the abandoned fit to finish")
            assert (await client.get("/models/medium")).json()["status"] == "trained"

            assert (await client.post("/load", json=named("medium"))).status_code == 200
            server_process = psutil.Process(server.pid)
            cpu_before = sum(server_process.cpu_times()[:2])

            async def server_working() -> bool:  # the big request has reached the server
                return sum(server_process.cpu_times()[:2]) - cpu_before > 0.3

            async with httpx.AsyncClient(base_url=url, timeout=120) as impatient:
                big_prediction = asyncio.create_task(
                    impatient.post("/predict", json={"X": X, **named("medium")})
                )
                await wait_until(server_working, what="the server to work on the prediction")
                big_prediction.cancel()
            status = (await client.get("/status")).json()
            assert status["inference"]["loaded"] == ["medium"]
            assert status["training"]["active"] == 0
            answer = await client.post("/predict", json={"X": X[:3], **named("medium")})
            assert answer.status_code == 200
