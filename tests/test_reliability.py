"""Trying hard to break the contract's guarantees: damaged files, failed saves, races,
cancelled requests, hostile input. (Crashes, orphans and shutdown: test_crashes.py.)"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import resource
import shutil
import threading
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from server.inference.batching import BatchingSettings
from server.inference.registry import Registry
from server.metrics import NoMetrics
from tests.conftest import ClientFactory
from tests.helpers import (
    dataset,
    files_under,
    fit_body,
    models_in,
    named,
    slow_fit_body,
    wait_training,
)

pytestmark = pytest.mark.anyio


async def fit(client: httpx.AsyncClient, name: str, model_type: str = "LogisticRegression") -> None:
    response = await client.post("/fit", json=fit_body(name, model_type))
    assert response.status_code == 201, response.text


# -- damaged files --------------------------------------------------------------------------
async def test_damaged_files_are_reported_on_load_and_in_listings(
    make_client: ClientFactory, models_dir: Path
) -> None:
    async with make_client() as client:
        for name in ("good", "garbage", "short", "meta", "lost"):
            await fit(client, name)
    garbage = models_dir / "garbage" / "1.joblib"
    garbage.write_bytes(os.urandom(garbage.stat().st_size))
    short = models_dir / "short" / "1.joblib"
    short.write_bytes(short.read_bytes()[:100])
    (models_dir / "meta" / "1.json").write_text('{"name": "meta", "trunc')
    (models_dir / "lost" / "1.joblib").unlink()

    async with make_client() as client:
        listed = {m["name"]: m for m in (await client.get("/models")).json()["models"]}
        assert sorted(listed) == ["garbage", "good", "lost", "meta", "short"]
        assert {name: m["status"] for name, m in listed.items()} == {
            "garbage": "untrusted",  # same size: its tag tells, without unpickling a byte
            "good": "trained",
            "lost": "broken",
            "meta": "broken",
            "short": "untrusted",
        }
        assert listed["lost"]["error"] == "model 'lost' has lost its file 1.joblib"
        for name in ("garbage", "short"):
            assert "1.joblib was changed after the server wrote it" in listed[name]["error"]
        assert listed["meta"]["error"].startswith("model 'meta' has unreadable metadata")

        for name, status in (("garbage", 409), ("short", 409), ("meta", 422), ("lost", 422)):
            response = await client.post("/load", json=named(name))
            assert response.status_code == status, response.text
            assert response.json()["detail"].startswith(f"model '{name}' ")

        # The others are untouched, the slot count too, and the damaged ones can go.
        assert (await client.post("/load", json=named("good"))).status_code == 200
        assert (await client.get("/status")).json()["inference"]["loaded"] == ["good"]
        assert (await client.post("/remove", json=named("garbage"))).status_code == 200
        removed = (await client.post("/remove_all")).json()["removed"]
        assert removed == ["good", "lost", "meta", "short"]
    assert models_in(models_dir) == []


# -- failed saves -----------------------------------------------------------------------------
async def test_a_write_that_fails_halfway_leaves_nothing_and_frees_the_slot(
    client: httpx.AsyncClient, models_dir: Path
) -> None:
    trainer = client.app.state.service.trainer
    await fit(client, "first")  # starts the worker process
    [pid] = trainer.worker_pids()
    # A file-size limit on the worker: joblib's write of a ~1 MB forest fails after 64 KiB.
    psutil.Process(pid).rlimit(psutil.RLIMIT_FSIZE, (64 * 1024, resource.RLIM_INFINITY))
    response = await client.post(
        "/fit",
        json=fit_body("forest", "RandomForestClassifier", {"n_estimators": 50}, n_samples=500),
    )
    assert response.status_code == 500
    assert response.json()["detail"].startswith("model 'forest' could not be saved: [Errno 27]")
    assert files_under(models_dir) == [
        "first/1.joblib",
        "first/1.json",
        "first/pointers.json",
    ]
    assert (await client.get("/status")).json()["training"]["active"] == 0
    assert (await client.get("/models/forest")).status_code == 404

    psutil.Process(pid).rlimit(
        psutil.RLIMIT_FSIZE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)
    )
    await fit(client, "forest", "RandomForestClassifier")
    assert trainer.worker_pids() == [pid]  # the same process: the failure did not kill it


async def test_a_models_directory_that_is_gone_gives_a_clear_error(
    client: httpx.AsyncClient, models_dir: Path
) -> None:
    shutil.rmtree(models_dir)
    models_dir.write_text("not a directory any more")
    response = await client.post("/fit", json=fit_body("nowhere"))
    assert response.status_code == 500
    assert response.json()["detail"].startswith("model 'nowhere' could not be saved: [Errno 20]")
    assert (await client.get("/status")).json()["training"]["active"] == 0
    assert (await client.get("/health")).status_code == 200


# -- races ------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _ReadModel:
    """What the registry needs of a loaded model: a stand-in, as the race is the registry's."""

    model_type: str = "LogisticRegression"
    count_unseen: object = None


async def test_a_load_answers_what_it_read_when_an_unload_waiting_on_it_drops_it_first() -> None:
    # An unload that started waiting on a load before a second load of the same version
    # wakes first and drops it; the second load then answered a plain 500 (KeyError).
    read_may_end = threading.Event()

    def read(name: str, version: int) -> Any:
        assert read_may_end.wait(30), "the test never let the read end"
        return _ReadModel()

    registry = Registry(read, 2, BatchingSettings(64, 0.001, 0.0), NoMetrics())
    key = ("hot", 1)
    first = asyncio.create_task(registry.load(key))
    unload = asyncio.create_task(registry.unload(key))  # each task's first step runs in order
    second = asyncio.create_task(registry.load(key))
    read_may_end.set()
    loaded_first, dropped, loaded_second = await asyncio.gather(first, unload, second)
    assert loaded_first is dropped is loaded_second
    assert registry.loaded() == []


async def test_load_unload_remove_predict_of_one_name_from_many_clients(
    client: httpx.AsyncClient, models_dir: Path
) -> None:
    X, _ = dataset()
    for round_ in range(3):
        await fit(client, "hot")
        calls = [
            *(client.post("/load", json=named("hot")) for _ in range(10)),
            *(client.post("/unload", json=named("hot")) for _ in range(10)),
            *(client.post("/predict", json={"X": X[:5], **named("hot")}) for _ in range(10)),
            client.post("/remove", json=named("hot")),
        ]
        responses = await asyncio.gather(*calls)
        codes = {r.status_code for r in responses}
        assert codes <= {200, 404, 409}, [r.text for r in responses if r.status_code >= 500]
        assert responses[-1].status_code == 200, f"round {round_}: {responses[-1].text}"
        # The end state agrees everywhere: the model is gone from disk, listing and memory.
        assert (await client.get("/models")).json() == {"models": []}
        assert (await client.get("/status")).json()["inference"]["loaded"] == []
        assert models_in(models_dir) == []


async def test_remove_all_during_trainings_and_predictions(
    make_client: ClientFactory, models_dir: Path
) -> None:
    X, _ = dataset()
    async with make_client(training_cores=3) as client:
        for name in ("p1", "p2"):
            await fit(client, name)
            await client.post("/load", json=named(name))
        fits = [
            asyncio.create_task(client.post("/fit", json=slow_fit_body(n))) for n in ("t1", "t2")
        ]
        try:
            for name in ("t1", "t2"):
                await wait_training(client, name)
            predictions = [
                client.post("/predict", json={"X": X[:5], **named(n)}) for n in ("p1", "p2") * 10
            ]
            results = await asyncio.gather(client.post("/remove_all"), *predictions)
            assert results[0].json() == {"removed": ["p1", "p2"], "training": ["t1", "t2"]}
            assert {r.status_code for r in results[1:]} <= {200, 404}

            # The end state agrees everywhere: /models, /status and the files on disk.
            listed = {
                m["name"]: m["status"] for m in (await client.get("/models")).json()["models"]
            }
            assert listed == {"t1": "training", "t2": "training"}
            status = (await client.get("/status")).json()
            assert status["training"]["models"] == ["t1", "t2"]
            assert status["inference"]["loaded"] == []
            assert not [p for p in models_in(models_dir) if not p.startswith(".")]
        finally:
            for task in fits:
                task.cancel()


# -- hostile input ----------------------------------------------------------------------------
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "body",
    [
        b'{"X": [[NaN, 1.0]], "y": [1], "config": {"name": "a", "model_type": "LogisticRegression"}}',
        b'{"X": [[Infinity, 1.0]], "y": [1], "config": {"name": "a", "model_type": "LogisticRegression"}}',
        b'{"X": [[1e400, 1.0]], "y": [1], "config": {"name": "a", "model_type": "LogisticRegression"}}',
        b'{"X": [[1'
        + b"0" * 400
        + b', 1.0]], "y": [1], "config": {"name": "a", "model_type": "LogisticRegression"}}',
        b'{"X": [[1.0, 2.0]], "y": [1'
        + b"0" * 40
        + b'], "config": {"name": "a", "model_type": "LogisticRegression"}}',
        b'{"X": [[1.0]], "y": [1], "config": {"name": "'
        + b"a" * 10_000
        + b'", "model_type": "LogisticRegression"}}',
        b'{"X": [[1.0]], "y": [1], "config": {"name": "a", "model_type": "'
        + b"L" * 10_000
        + b'"}}',
        b'{"X": [[1.0]], "y": [1], "config": {"name": "a", "model_type": "LogisticRegression"}, "extra": 1}',
        b'{"X": [[1.0]], "y": [1], "config": {"name": "a", "model_type": "LogisticRegression", "nope": 1}}',
        b"[" * 100_000 + b"]" * 100_000,
        b'{"X": ' + b"[" * 5_000 + b"]" * 5_000 + b"}",
        b"\xff\xfe\x00garbage",
        b"",
        b"null",
        b'{"X": [[0.5, "a"], [1.0, 2.0]], "y": [1, 2], "config": {"name": "a", "model_type": "LogisticRegression"}}',
    ],
    ids=[
        "nan",
        "infinity",
        "huge-float",
        "huge-int-feature",
        "huge-int-label",
        "long-name",
        "long-model-type",
        "unknown-field",
        "unknown-config-field",
        "deep-nesting",
        "deep-nesting-in-X",
        "not-utf8",
        "empty",
        "null",
        "numbers-and-words",
    ],
)
async def test_hostile_fit_bodies_are_422(
    client: httpx.AsyncClient, models_dir: Path, body: bytes
) -> None:
    response = await client.post("/fit", content=body, headers=JSON)
    assert response.status_code == 422, response.text
    assert "detail" in response.json()
    assert len(response.content) < 5_000  # nothing echoed back
    assert models_in(models_dir) == []
