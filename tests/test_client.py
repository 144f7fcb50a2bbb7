"""The client library and the demo scripts, against a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from client import ApiError, AsyncModelClient, ModelClient
from tests.helpers import dataset, wait_for
from tests.servers import PROJECT_ROOT, uvicorn_server

SCRIPT_TIMEOUT = 180


# The shared server guards its endpoints: every client call and demo below sends a token.
TOKEN = "client-tests-management-token"
INFERENCE_TOKEN = "client-tests-inference-token"


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    env = {"MANAGEMENT_TOKEN": TOKEN, "INFERENCE_TOKEN": INFERENCE_TOKEN}
    with uvicorn_server(tmp_path_factory.mktemp("models"), training_cores=3, env=env) as (url, _):
        yield url


def run_script(
    module: str, url: str, cwd: Path, *options: str, token_from: str = "environment"
) -> subprocess.CompletedProcess[str]:
    """Run a demo script against `url`, its token from $MODEL_SERVER_TOKEN or from --token."""
    env = {"PYTHONPATH": str(PROJECT_ROOT), "PATH": "/usr/bin:/bin"}
    if token_from == "environment":
        env["MODEL_SERVER_TOKEN"] = TOKEN
    else:
        options = ("--token", TOKEN, *options)
    return subprocess.run(
        [sys.executable, "-m", module, "--url", url, "--quick", *options],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=SCRIPT_TIMEOUT,
    )


# -- the library ------------------------------------------------------------------------------
def test_sync_client_round_trip_and_errors(server_url: str) -> None:
    X, y = dataset(labels="str")
    with ModelClient(server_url, token=TOKEN) as client:
        assert client.health() == {"status": "ok"}
        answer = client.fit("sync-lr", "LogisticRegression", X, y, {"C": 0.5})
        assert answer["hyperparameters"] == {"C": 0.5}
        assert client.load("sync-lr") == {"name": "sync-lr", "version": 1, "status": "loaded"}
        assert client.predict("sync-lr", X[:2])["predictions"][0] in {"cat", "dog"}
        assert client.model("sync-lr")["status"] == "loaded"

        with pytest.raises(ApiError) as caught:
            client.fit("sync-lr", "LogisticRegression", X, y)
        assert caught.value.status == 409
        assert caught.value.detail == (
            "model 'sync-lr' exists already; POST /remove it first, or train its next version "
            'with "new_version": true'
        )
        with pytest.raises(ApiError) as caught:
            client.load("nobody")
        assert (caught.value.status, caught.value.detail) == (404, "model 'nobody' does not exist")
        with pytest.raises(ApiError) as caught:
            client.predict("sync-lr", [[1.0]])
        assert caught.value.status == 422

        assert client.remove("sync-lr") == {"name": "sync-lr", "removed": True}


@pytest.mark.anyio
async def test_async_client_round_trip_and_errors(server_url: str) -> None:
    X, y = dataset()
    async with AsyncModelClient(server_url, token=TOKEN) as client:
        await client.fit("async-rf", "RandomForestClassifier", X, y)
        await client.load("async-rf")
        answer = await client.predict("async-rf", X[:3], probabilities=True)
        assert len(answer["probabilities"]) == 3
        with pytest.raises(ApiError) as caught:
            await client.unload("nobody")
        assert caught.value.status == 404
        assert "async-rf" in (await client.status())["inference"]["loaded"]
        await client.remove("async-rf")
        assert all(m["name"] != "async-rf" for m in (await client.models())["models"])


ODD_KEYS = ["a&key=b", "c#d", "e+f"]


def test_clients_encode_query_values(server_url: str) -> None:
    """Review item 15: `since=...+00:00` arrived as a space (422), and erase_key of a key
    holding `&`, `#` or `+` erased another key, or none."""
    X, y = dataset()
    frame = pd.DataFrame(X, columns=[f"x{i}" for i in range(len(X[0]))])
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    with ModelClient(server_url, token=TOKEN) as client:
        client.fit("odd-keys", "LogisticRegression", frame, y)
        client.load("odd-keys")
        client.set_capture("odd-keys")
        client.predict("odd-keys", frame[:3].assign(who=ODD_KEYS), key="who")

        def captured() -> bool:
            versions = client.monitoring("odd-keys", since=since)["versions"]
            return bool(versions) and versions[0]["captured"] == 3

        wait_for(captured, 30, "the captured rows")
        assert client.erase_key("odd-keys", "e+f")["rows"] == 1
        assert client.erase_key("odd-keys", "a&key=b")["rows"] == 1

    async def erase() -> dict[str, Any]:
        async with AsyncModelClient(server_url, token=TOKEN) as client:
            await client.monitoring("odd-keys", since=since)
            return await client.erase_key("odd-keys", "c#d")

    assert asyncio.run(erase())["rows"] == 1
    with ModelClient(server_url, token=TOKEN) as client:
        client.remove("odd-keys")  # the shared server's two loaded models are the others'


def test_sync_client_versions_promote_rollback_and_aliases(server_url: str) -> None:
    X, y = dataset(labels="str")
    with ModelClient(server_url, token=TOKEN) as client:
        client.fit("sync-v", "LogisticRegression", X, y)
        client.load("sync-v")
        second = client.fit("sync-v", "RandomForestClassifier", X, y, new_version=True)
        assert second["version"] == 2
        assert client.promote("sync-v", 2) == {
            "name": "sync-v", "current_version": 2, "aliases": {},
        }  # fmt: skip
        assert client.predict("sync-v", X[:1])["version"] == 2
        assert client.rollback("sync-v")["current_version"] == 1
        assert client.set_alias("sync-v", "staging", 2)["aliases"] == {"staging": 2}
        assert client.load("sync-v", alias="staging")["version"] == 2
        assert client.predict("sync-v", X[:1], alias="staging")["version"] == 2
        assert client.unload("sync-v", version=2)["status"] == "trained"
        assert [v["version"] for v in client.versions("sync-v")["versions"]] == [1, 2]
        assert client.version("sync-v", 2)["model_type"] == "RandomForestClassifier"
        assert client.remove_alias("sync-v", "staging")["aliases"] == {}
        assert client.remove_version("sync-v", 2)["removed"] is True
        moves = [(m["pointer"], m["to"]) for m in client.history("sync-v")["history"]]
        assert moves == [
            ("current", 1),
            ("current", 2),
            ("current", 1),
            ("staging", 2),
            ("staging", None),
        ]
        with pytest.raises(ApiError) as caught:
            client.promote("sync-v", 2)
        assert (caught.value.status, caught.value.detail) == (
            404,
            "model 'sync-v' has no version 2",
        )
        client.remove("sync-v")


@pytest.mark.anyio
async def test_async_client_trains_and_promotes_a_new_version(server_url: str) -> None:
    X, y = dataset()
    async with AsyncModelClient(server_url, token=TOKEN) as client:
        await client.fit("async-v", "LogisticRegression", X, y)
        fitted = await client.fit(
            "async-v", "LogisticRegression", X, y, {"C": 0.1}, new_version=True, promote=True
        )
        assert (fitted["version"], fitted["promoted"]) == (2, True)
        assert (await client.versions("async-v"))["current_version"] == 2
        assert (await client.rollback("async-v"))["current_version"] == 1
        assert len((await client.history("async-v"))["history"]) == 3
        assert (await client.set_alias("async-v", "next", 2))["aliases"] == {"next": 2}
        await client.remove("async-v")


def test_retrain_demo_promotes_and_rolls_back_with_no_failed_request(
    server_url: str, tmp_path: Path
) -> None:
    result = run_script("client.retrain", server_url, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "promoted version 2 in" in result.stdout
    assert "rolled back to version 1" in result.stdout
    answered = re.search(r"(\d+) predictions answered, (\d+) failed", result.stdout)
    assert answered is not None and int(answered[1]) > 0 and answered[2] == "0"
    timeline = result.stdout.split("Answers per second")[1]
    assert re.search(r"\n\s*\d+\s+0\s+[1-9]", timeline)  # a second answered by version 2 only


def test_monitoring_demo_finds_the_drift_the_fall_and_the_better_version(
    server_url: str, tmp_path: Path
) -> None:
    result = run_script("client.monitoring", server_url, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    drift = result.stdout.split("Drift per feature")[1].split("Live accuracy")[0]
    drifted = {line.split()[0] for line in drift.splitlines() if line.endswith(" yes")}
    assert drifted == {"bill_length_mm", "sex"}
    accuracy = re.findall(r"^(as trained|new team)\s+(\d+)\s+([\d.]+)$", result.stdout, re.M)
    assert [name for name, *_ in accuracy] == ["as trained", "new team"]
    assert float(accuracy[1][2]) < float(accuracy[0][2])
    assert "OK: drift found" in result.stdout


def test_sync_client_jobs_wait_and_cancel(server_url: str) -> None:
    X, y = dataset()
    seen: list[dict] = []
    with ModelClient(server_url, token=TOKEN) as client:
        job = client.fit(
            "job-rf", "RandomForestClassifier", X, y, {"n_estimators": 300}, wait=False
        )
        assert job["state"] == "running"
        assert client.job(job)["id"] == job["id"]
        model = client.wait(job, on_progress=seen.append)
        assert model["name"] == "job-rf" and model["hyperparameters"]["n_estimators"] == 300
        assert seen[-1]["state"] == "succeeded"
        assert [e["progress"]["fraction"] for e in seen] == sorted(
            e["progress"]["fraction"] for e in seen
        )
        assert client.jobs()["jobs"][0]["id"] == job["id"]

        failing = client.fit("job-bad", "LGBMClassifier", X, y, {"num_leaves": -3}, wait=False)
        with pytest.raises(ApiError) as caught:
            client.wait(failing)
        assert caught.value.status == 422
        assert caught.value.detail.startswith("LGBMClassifier refused to train 'job-bad'")

        slow = client.fit(
            "job-slow", "RandomForestClassifier", X, y, {"n_estimators": 10**6}, wait=False
        )
        assert client.cancel(slow)["state"] == "cancelled"
        with pytest.raises(ApiError) as caught:
            client.wait(slow["id"])
        assert caught.value.status == 409
        with pytest.raises(ApiError) as caught:
            client.cancel(slow)
        assert caught.value.status == 409
        with pytest.raises(ApiError) as caught:
            client.wait("0123456789abcdef")
        assert caught.value.status == 404
        client.remove("job-rf")


@pytest.mark.anyio
async def test_async_client_jobs_wait_and_cancel(server_url: str) -> None:
    X, y = dataset()
    seen: list[dict] = []
    async with AsyncModelClient(server_url, token=TOKEN) as client:
        job = await client.fit("ajob-xgb", "XGBClassifier", X, y, {"n_estimators": 200}, wait=False)
        model = await client.wait(job, on_progress=seen.append)
        assert model["name"] == "ajob-xgb"
        assert seen[-1]["progress"]["fraction"] == 1.0
        slow = await client.fit(
            "ajob-slow", "RandomForestClassifier", X, y, {"n_estimators": 10**6}, wait=False
        )
        assert (await client.cancel(slow))["state"] == "cancelled"
        with pytest.raises(ApiError) as caught:
            await client.wait(slow)
        assert caught.value.status == 409
        assert "cancelled" in caught.value.detail
        await client.remove("ajob-xgb")


def test_clients_send_their_token_and_report_401_and_403(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MODEL_SERVER_TOKEN", raising=False)
    with ModelClient(server_url) as anonymous, pytest.raises(ApiError) as caught:
        anonymous.models()
    assert caught.value.status == 401
    with ModelClient(server_url, token=INFERENCE_TOKEN) as reader:
        assert "models" in reader.models()
        with pytest.raises(ApiError) as caught:
            reader.remove_all()
        assert caught.value.status == 403
    monkeypatch.setenv("MODEL_SERVER_TOKEN", INFERENCE_TOKEN)
    with ModelClient(server_url) as from_environment:
        assert "models" in from_environment.models()


# -- the demo scripts -------------------------------------------------------------------------
def test_lifecycle_demo_provokes_every_error(server_url: str, tmp_path: Path) -> None:
    result = run_script("client.lifecycle", server_url, tmp_path, token_from="option")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "0 not" in out
    for step in (
        "load an unknown name                            404  404  ok",
        "fit a duplicate name                            409  409  ok",
        "load past MAX_INFERENCE_MODELS=2                409  409  ok",
        "predict on an unloaded model                    409  409  ok",
        "fit with all 2 training slot(s) busy            503  503  ok",
        "fit with ragged X                               422  422  ok",
        "fit a column of numbers and words               422  422  ok",
        "fit a categorical column with a fraction        422  422  ok",
        "predict with probabilities                      200  200  ok",
        "remove_all                                      200  200  ok",
        "start a fit without waiting (wait=false)        202  202  ok",
        "cancel it                                       200  200  ok",
        "cancel it again                                 409  409  ok",
        "cancel an unknown job                           404  404  ok",
        "a waiting fit whose job is cancelled            409  409  ok",
        "a fit past its max_seconds                      422  422  ok",
        "cancel a job that has succeeded                 409  409  ok",
    ):
        assert step in out


def test_sequential_then_concurrent_demo(server_url: str, tmp_path: Path) -> None:
    sequential = run_script("client.sequential", server_url, tmp_path)
    assert sequential.returncode == 0, sequential.stdout + sequential.stderr
    assert "Sequential training (one fit at a time):" in sequential.stdout
    assert "seq-CatBoostClassifier" in sequential.stdout
    # Every slot ran each type once before the first timed fit (issue 37, item 13).
    warmed = sequential.stdout.index("warmed up: a small fit of each type on each of the 2")
    assert warmed < sequential.stdout.index("seq-RandomForestClassifier: trained in")
    saved = json.loads((tmp_path / "demo_results" / "sequential.json").read_text())
    # Quick fits are sensible models, not one class (item 14).
    for fit in saved["fits"]:
        assert fit["validation"]["scores"]["balanced_accuracy"] > 0.65, fit
    assert [fit["model_type"] for fit in saved["fits"]] == [
        "RandomForestClassifier",
        "XGBClassifier",
        "LGBMClassifier",
        "CatBoostClassifier",
    ]
    # The five types scored on the same held-out rows, one table row each.
    assert "The five types on the same held-out rows" in sequential.stdout
    held_out = {fit["validation"]["n_samples"] for fit in saved["fits"]}
    assert held_out == {saved["baseline"]["validation"]["n_samples"]} and held_out != {0}
    table = sequential.stdout.split("The five types on the same held-out rows")[1]
    for model_type in (*(fit["model_type"] for fit in saved["fits"]), "LogisticRegression"):
        assert model_type in table

    concurrent = run_script(
        "client.concurrent", server_url, tmp_path, "--requests", "60", token_from="option"
    )
    assert concurrent.returncode == 0, concurrent.stdout + concurrent.stderr
    out = concurrent.stdout
    assert "comparing with the sequential run saved in demo_results/sequential.json" in out
    assert out.index("warmed up") < out.index("launching 4 fits at once")
    assert "launching 4 fits at once: the server has 2 training slot(s)" in out
    assert "Concurrent training (all launched at once):" in out
    assert "The types on the same held-out rows" in out
    # Issue 45, item 9: quick fits time round trips, so no speed-up is claimed for them.
    assert "No speed-up shown: a quick run's fits last a fraction of a second" in out
    assert "efficiency" not in out
    assert "Concurrent predictions:" in out
    assert "     60           32" in out


def test_concurrent_demo_without_sequential_figures_says_what_to_do(
    server_url: str, tmp_path: Path
) -> None:
    result = run_script("client.concurrent", server_url, tmp_path)
    assert result.returncode == 2
    assert "run `python -m client.sequential` first, or pass --compare" in result.stderr


class _Broken(BaseHTTPRequestHandler):
    """A server that answers 500 to everything: the scripts must notice."""

    def _answer(self) -> None:
        body = b'{"detail": "broken on purpose"}'
        self.send_response(500)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    "module",
    [
        "client.sequential",
        "client.concurrent",
        "client.lifecycle",
        "client.retrain",
        "client.monitoring",
    ],
)
def test_scripts_exit_non_zero_when_the_server_misbehaves(module: str, tmp_path: Path) -> None:
    broken = ThreadingHTTPServer(("127.0.0.1", 0), _Broken)
    threading.Thread(target=broken.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{broken.server_address[1]}"
        result = run_script(
            module, url, tmp_path, *(["--compare"] if module == "client.concurrent" else [])
        )
    finally:
        broken.shutdown()
        broken.server_close()
    assert result.returncode == 1
    assert "FAILED: the server answered 500" in result.stderr
    assert "broken on purpose" in result.stderr
