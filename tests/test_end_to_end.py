"""A real `uvicorn server.main:app` on a free port of 127.0.0.1, driven over HTTP.

These also check what only a real process shows: worker processes stop with the server,
whether it is stopped (SIGTERM) or killed (SIGKILL), and nothing half-written is left.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from contextlib import suppress
from pathlib import Path

import httpx
import psutil
import pytest

from tests.helpers import dataset, fit_body, named, slow_fit_body, wait_training, wait_until
from tests.servers import STOP_TIMEOUT, uvicorn_server

pytestmark = pytest.mark.anyio


def training_processes(server: subprocess.Popen) -> list[psutil.Process]:
    children = psutil.Process(server.pid).children(recursive=True)
    return [p for p in children if "spawn_main" in " ".join(p.cmdline())]


async def wait_gone(processes: list[psutil.Process]) -> None:
    async def all_gone() -> bool:
        return not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in processes)

    await wait_until(all_gone, timeout=10, what="the training processes to stop")


async def test_fit_load_predict_over_http(tmp_path: Path) -> None:
    models_dir = tmp_path / "models"
    X, y = dataset(labels="str")
    with uvicorn_server(models_dir, training_cores=3) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            fits = await asyncio.gather(
                client.post("/fit", json=fit_body("rf", "RandomForestClassifier", labels="str")),
                client.post(
                    "/fit",
                    json=fit_body("cb", "CatBoostClassifier", {"iterations": 20}, labels="str"),
                ),
            )
            assert [r.status_code for r in fits] == [201, 201]
            assert (await client.post("/load", json=named("rf"))).status_code == 200
            response = await client.post(
                "/predict", json={"X": X, **named("rf", probabilities=True)}
            )
            assert response.status_code == 200
            answer = response.json()
            assert answer["classes"] == ["cat", "dog"]
            assert len(answer["predictions"]) == len(y)
            status = (await client.get("/status")).json()
            assert status["training"] == {"cores": 3, "slots": 2, "active": 0, "models": []}
            assert status["inference"]["loaded"] == ["rf"]
            assert (await client.get("/openapi.json")).status_code == 200
            assert (await client.get("/docs")).status_code == 200
    assert sorted(p.name for p in models_dir.iterdir()) == [
        "cb.joblib",
        "cb.json",
        "rf.joblib",
        "rf.json",
    ]


async def test_sigterm_during_training_stops_everything_and_leaves_no_half_model(
    tmp_path: Path,
) -> None:
    models_dir = tmp_path / "models"
    with uvicorn_server(models_dir) as (base_url, server):
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            slow = asyncio.create_task(client.post("/fit", json=slow_fit_body("slow")))
            await wait_training(client, "slow")
            workers = training_processes(server)
            assert len(workers) == 1
            server.send_signal(signal.SIGTERM)
            server.wait(STOP_TIMEOUT)
            await wait_gone(workers)
            # After uvicorn's graceful timeout the fit is cancelled: uvicorn answers 500.
            with suppress(httpx.HTTPError):
                assert (await slow).status_code == 500
    assert not [p for p in models_dir.iterdir() if not p.name.startswith(".")]


async def test_workers_stop_when_the_server_is_killed_and_the_name_is_free_after(
    tmp_path: Path,
) -> None:
    models_dir = tmp_path / "models"
    with uvicorn_server(models_dir) as (base_url, server):
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            slow = asyncio.create_task(client.post("/fit", json=slow_fit_body("cut")))
            await wait_training(client, "cut")
            workers = training_processes(server)
            assert len(workers) == 1
            server.kill()
            server.wait(STOP_TIMEOUT)
            await wait_gone(workers)  # orphans notice their parent is gone and exit
            with pytest.raises(httpx.HTTPError):
                await slow
    with uvicorn_server(models_dir) as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            assert (await client.get("/models")).json() == {"models": []}
            assert (await client.post("/fit", json=fit_body("cut"))).status_code == 201
    assert sorted(p.name for p in models_dir.iterdir()) == ["cut.joblib", "cut.json"]
