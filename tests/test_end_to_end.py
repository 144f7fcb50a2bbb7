"""A real `uvicorn server.main:app` on a free port of 127.0.0.1, driven over HTTP.

These also check what only a real process shows: worker processes stop with the server,
when it is stopped (SIGTERM), and nothing half-written is left (killed: test_crashes.py).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from contextlib import suppress
from pathlib import Path

import httpx
import pytest

from server.ml.progress import PHASES
from tests.helpers import (
    core_plan,
    dataset,
    files_under,
    fit_body,
    models_in,
    named,
    slow_fit_body,
    wait_training,
    wait_until,
)
from tests.servers import STOP_TIMEOUT, training_processes, uvicorn_server, wait_gone

pytestmark = pytest.mark.anyio


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
            assert status["training"] == {
                "backend": "local",
                "cores": 3,
                **core_plan(),
                "slots": 2,
                "active": 0,
                "models": [],
                "jobs": [],
            }
            assert status["inference"]["loaded"] == ["rf"]
            assert (await client.get("/openapi.json")).status_code == 200
            assert (await client.get("/docs")).status_code == 200
    assert files_under(models_dir) == [
        "_serving.json",  # rf was loaded: the set the replicas would follow
        "cb/1.joblib",
        "cb/1.json",
        "cb/1.onnx",
        "cb/pointers.json",
        "rf/1.joblib",
        "rf/1.json",
        "rf/1.onnx",
        "rf/pointers.json",
    ]


async def test_sigterm_during_training_stops_everything_and_leaves_no_half_model(
    tmp_path: Path,
) -> None:
    models_dir = tmp_path / "models"
    with uvicorn_server(models_dir) as (base_url, server):
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            slow = asyncio.create_task(client.post("/fit", json=slow_fit_body("slow")))
            await wait_training(client, "slow")
            workers = training_processes(server.pid)
            assert len(workers) == 1
            asked = time.monotonic()
            server.send_signal(signal.SIGTERM)
            server.wait(STOP_TIMEOUT)  # bounded: --timeout-graceful-shutdown 3, then the kill
            stopped = time.monotonic() - asked
            await wait_gone(workers)
            print(
                f"SIGTERM during a fit: server exited after {stopped:.1f} s (graceful timeout 3 s)"
            )
            # After uvicorn's graceful timeout the fit is cancelled: uvicorn answers 500.
            with suppress(httpx.HTTPError):
                assert (await slow).status_code == 500
    assert not [p for p in models_in(models_dir) if not p.startswith(".")]


async def test_job_events_stream_live_progress_and_end_with_the_finished_job(
    tmp_path: Path,
) -> None:
    """Over a real socket, events arrive while the fit runs (not all at the end)."""
    body = fit_body(
        "streamed", "RandomForestClassifier", {"n_estimators": 400}, n_samples=3_000, n_features=20
    )
    with uvicorn_server(tmp_path / "models") as (base_url, _):
        async with httpx.AsyncClient(base_url=base_url, timeout=60) as client:
            started = await client.post("/fit?wait=false", json=body)
            assert started.status_code == 202
            events: list[dict] = []
            async with client.stream("GET", started.headers["Location"] + "/events") as stream:
                assert stream.headers["content-type"].startswith("text/event-stream")
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        events.append(json.loads(line[len("data: ") :]))
                        if len(events) == 1:
                            # The first event comes while the job still runs.
                            current = (await client.get(started.headers["Location"])).json()
                            assert current["state"] == "running"
    fractions = [event["progress"]["fraction"] for event in events]
    assert [event["state"] for event in events[:-1]] == ["running"] * (len(events) - 1)
    assert events[-1]["state"] == "succeeded"
    assert events[-1]["model"]["name"] == "streamed"
    assert fractions == sorted(fractions)
    assert fractions[-1] == 1.0
    assert any(0 < fraction < 1 for fraction in fractions), fractions
    # The job tells its phases in order; compiling a 400-tree forest takes seconds, so it
    # shows (checking may be over between two reads).
    phases = [event["phase"] for event in events[:-1]]
    seen = list(dict.fromkeys(phases))
    assert seen == [phase for phase in PHASES if phase in seen], phases
    assert seen[:2] == ["training", "compiling"], phases
    assert events[-1]["phase"] is None


@pytest.mark.parametrize(
    ("host", "env", "warned"),
    [
        ("0.0.0.0", {}, True),
        ("0.0.0.0", {"MANAGEMENT_TOKEN": "a-token"}, False),
        ("127.0.0.1", {}, False),
    ],
)
async def test_a_server_open_to_the_network_without_a_token_warns(
    tmp_path: Path, host: str, env: dict[str, str], warned: bool
) -> None:
    log = tmp_path / "server.log"
    with uvicorn_server(tmp_path / "models", host=host, env=env, log=log):

        async def checked() -> bool:  # the check runs a second after start-up
            return "listening on" in log.read_text()

        await wait_until(checked, timeout=30, what="the listening check")
    [line] = [line for line in log.read_text().splitlines() if "listening on" in line]
    assert line.startswith("WARNING:") is warned, line
    assert ("with no MANAGEMENT_TOKEN or INFERENCE_TOKEN set" in line) is warned
    assert f"{host}:" in line
