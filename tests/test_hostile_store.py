"""The hostile review's findings about the store and its versions (issue 27, findings 2, 6,
7, 8, 9): a delete during a load, reused version numbers, an alias named `current`, a
removal during a promote, entries of MODELS_PATH that are not models, /metrics on the loop."""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.helpers import fit_body, named, wait_until

pytestmark = pytest.mark.anyio


def new_version(name: str, model_type: str = "LogisticRegression") -> dict[str, Any]:
    body = fit_body(name, model_type)
    body["config"]["new_version"] = True
    return body


@pytest.fixture
async def client(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(max_inference_models=3) as client:
        yield client


@contextmanager
def held_loads(
    monkeypatch: pytest.MonkeyPatch, client: httpx.AsyncClient
) -> Iterator[tuple[threading.Event, threading.Event]]:
    """Every load waits, once it has begun, until the test lets it go: (begun, go)."""
    begun, go = threading.Event(), threading.Event()
    registry = client.app.state.service.registry  # type: ignore[attr-defined]
    read = registry._read_model  # the reader the composition gave it

    def held(*args: Any, **kwargs: Any) -> Any:
        begun.set()
        assert go.wait(30), "the test never let the load go"
        return read(*args, **kwargs)

    monkeypatch.setattr(registry, "_read_model", held)
    try:
        yield begun, go
    finally:
        go.set()


async def until(event: threading.Event, what: str) -> None:
    async def is_set() -> bool:
        return event.is_set()

    await wait_until(is_set, timeout=30, what=what)


# -- 2. a deleted version, and its number ---------------------------------------------------
async def test_a_delete_during_a_load_of_that_version_is_409(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await client.post("/fit", json=fit_body("m"))).status_code == 201
    assert (await client.post("/fit", json=new_version("m", "RandomForestClassifier"))).json()[
        "version"
    ] == 2
    with held_loads(monkeypatch, client) as (begun, go):
        load = asyncio.ensure_future(client.post("/load", json=named("m", version=2)))
        await until(begun, "the load to begin")
        deleted = await client.delete("/models/m/versions/2")
        assert deleted.status_code == 409
        assert deleted.json()["detail"] == (
            "model 'm' version 2 is loaded or being loaded: unload it first"
        )
        go.set()
        assert (await load).status_code == 200
    assert (await client.get("/models/m/versions/2")).json()["status"] == "loaded"
    assert (await client.delete("/models/m/versions/2")).status_code == 409
    assert (await client.post("/unload", json=named("m", version=2))).status_code == 200
    assert (await client.delete("/models/m/versions/2")).status_code == 200
    assert (
        await client.post("/predict", json={"X": [[0.0] * 4], **named("m", version=2)})
    ).status_code == 404


async def test_version_numbers_are_never_given_again_after_a_delete(
    make_client: ClientFactory, models_dir: Path
) -> None:
    async with make_client() as client:
        assert (await client.post("/fit", json=fit_body("n"))).status_code == 201
        assert (await client.post("/fit", json=new_version("n"))).json()["version"] == 2
        assert (await client.delete("/models/n/versions/2")).status_code == 200
        three = (await client.post("/fit", json=new_version("n", "RandomForestClassifier"))).json()
        assert three["version"] == 3
        assert (await client.delete("/models/n/versions/3")).status_code == 200
    pointers = json.loads((models_dir / "n" / "pointers.json").read_bytes())
    assert pointers["highest_deleted"] == 3
    async with make_client() as client:  # a restart reads it from disk
        assert (await client.post("/fit", json=new_version("n"))).json()["version"] == 4
        versions = (await client.get("/models/n/versions")).json()["versions"]
        assert [v["version"] for v in versions] == [1, 4]


# -- 7. an alias named `current` ---------------------------------------------------------------
async def test_current_is_refused_as_an_alias_and_rollback_still_works(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.post("/fit", json=fit_body("a"))).status_code == 201
    assert (await client.post("/fit", json=new_version("a"))).status_code == 201
    refused = await client.put("/models/a/aliases/current", json={"version": 2})
    assert refused.status_code == 422 and "'current'" in refused.json()["detail"]
    assert (await client.post("/models/a/promote", json={"version": 2})).status_code == 200
    rolled = await client.post("/models/a/rollback")
    assert rolled.status_code == 200 and rolled.json()["current_version"] == 1
    history = (await client.get("/models/a/history")).json()
    assert all(move["pointer"] == "current" for move in history["history"])


# -- 8. a removal during a promote -------------------------------------------------------------
@pytest.mark.parametrize("removal", ["/remove", "/remove_all"])
async def test_a_removal_during_a_promote_waits_for_it_and_leaves_nothing(
    client: httpx.AsyncClient, models_dir: Path, monkeypatch: pytest.MonkeyPatch, removal: str
) -> None:
    assert (await client.post("/fit", json=fit_body("p"))).status_code == 201
    assert (await client.post("/fit", json=new_version("p"))).status_code == 201
    assert (await client.post("/load", json=named("p"))).status_code == 200
    with held_loads(monkeypatch, client) as (begun, go):  # the swap loads version 2 first
        promote = asyncio.ensure_future(client.post("/models/p/promote", json={"version": 2}))
        await until(begun, "the promote's load to begin")
        body = named("p") if removal == "/remove" else None
        lock = client.app.state.service.versions.moving("p")  # type: ignore[attr-defined]
        remove = asyncio.ensure_future(client.post(removal, json=body))

        async def removal_waits() -> bool:
            return bool(lock._waiters)  # the removal has queued behind the promote

        await wait_until(removal_waits, timeout=30, what="the removal to wait for the lock")
        go.set()
        # The removal never answers before the promote (both may answer together: each
        # answers once the serving set is written).
        first, _ = await asyncio.wait({promote, remove}, return_when=asyncio.FIRST_COMPLETED)
        assert promote in first
        promoted, removed = await promote, await remove
    assert promoted.status_code == 200, promoted.text
    assert removed.status_code == 200, removed.text
    assert not (models_dir / "p").exists()
    assert [p.name for p in models_dir.iterdir() if p.name.startswith(".p.")] == []
    assert (await client.get("/models/p")).status_code == 404
    assert (await client.get("/status")).json()["inference"]["loaded_versions"] == []
    late = await client.post("/models/p/promote", json={"version": 1})
    assert late.status_code == 404 and late.json()["detail"] == "model 'p' does not exist"


# -- 9. entries that are not models --------------------------------------------------------------
async def test_links_fifos_and_missing_files_are_listed_broken_and_everything_else_serves(
    client: httpx.AsyncClient, models_dir: Path
) -> None:
    assert (await client.post("/fit", json=fit_body("good"))).status_code == 201
    assert (await client.post("/load", json=named("good"))).status_code == 200
    pointers = (models_dir / "good" / "pointers.json").read_bytes()
    (models_dir / "fifo").mkdir()
    (models_dir / "fifo" / "pointers.json").write_bytes(pointers)
    os.mkfifo(models_dir / "fifo" / "1.json")
    (models_dir / "link").symlink_to(models_dir / "good")
    (models_dir / "nometa").mkdir()
    (models_dir / "nometa" / "pointers.json").write_bytes(pointers)
    # Before the fix, reading the FIFO blocked the server for good: a writer frees it.
    watchdog = threading.Timer(20, _feed_fifo, [models_dir / "fifo" / "1.json"])
    watchdog.start()
    try:
        listed = await client.get("/models")
        assert listed.status_code == 200
        by_name = {model["name"]: model for model in listed.json()["models"]}
        assert by_name["good"]["status"] == "loaded"
        assert by_name["fifo"]["status"] == "broken"
        assert "1.json is not a regular file" in by_name["fifo"]["error"]
        assert by_name["link"]["status"] == "broken"
        assert by_name["link"]["error"] == "link is a symbolic link, which the store never follows"
        assert by_name["nometa"]["error"] == "model 'nometa' has no metadata file for version 1"
        assert (await client.get("/models/link")).json()["status"] == "broken"
        assert (await client.get("/models/nometa")).json()["status"] == "broken"
        loaded = await client.post("/load", json=named("link"))
        assert loaded.status_code == 422 and "symbolic link" in loaded.json()["detail"]
        assert (await client.get("/metrics")).status_code == 200
        assert (await client.get("/health")).status_code == 200
        predicted = await client.post("/predict", json={"X": [[0.0] * 4], **named("good")})
        assert predicted.status_code == 200
        snapshot = client.app.state.ui_hub._build()  # type: ignore[attr-defined]
        assert {m["name"] for m in snapshot["models"]} >= {"good", "fifo", "link", "nometa"}
        assert watchdog.is_alive()  # nobody had to free the server
    finally:
        watchdog.cancel()


def _feed_fifo(path: Path) -> None:
    with open(path, "wb") as fifo:
        fifo.write(b"{}")


# -- 6. /metrics reads the store at most once a second -------------------------------------------
async def test_metrics_scrapes_read_each_version_once_until_it_changes(
    client: httpx.AsyncClient, models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("s1", "s2", "s3"):
        assert (await client.post("/fit", json=fit_body(name))).status_code == 201
    store = client.app.state.service.store  # type: ignore[attr-defined]
    reads: list[tuple[str, int]] = []
    signed = store.signed_metadata

    def counted(name: str, version: int) -> dict[str, Any]:
        reads.append((name, version))
        return signed(name, version)

    monkeypatch.setattr(store, "signed_metadata", counted)
    for _ in range(30):
        scrape = await client.get("/metrics")
        assert scrape.status_code == 200
        assert "model_server_untrusted_model_versions 0.0" in scrape.text
        await client.get("/models")
    assert len(reads) <= 3  # each version's metadata read once, not per scrape or listing
    metadata = models_dir / "s2" / "1.json"
    metadata.write_bytes(metadata.read_bytes().replace(b'"n_samples": 60', b'"n_samples": 61'))
    listed = (await client.get("/models/s2")).json()
    assert listed["status"] == "untrusted"
    assert ("s2", 1) in reads[3:]  # the changed file was read again


def test_past_five_scrapes_a_second_metrics_answers_the_last_rendering(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from server import metrics as metrics_module

    now = [100.0]
    monkeypatch.setattr(metrics_module.time, "monotonic", lambda: now[0])
    metrics = metrics_module.Metrics(lambda: None)
    renders = []
    for _ in range(7):
        metrics.request("GET", "/health", 200, 0.001)
        renders.append(metrics.exposition())
    assert b'route="/health",status="200"} 5.0' in renders[4]
    assert renders[5] == renders[6] == renders[4]  # the sixth and seventh: the fifth's text
    now[0] += 1.0  # the next second renders afresh
    assert b'route="/health",status="200"} 7.0' in metrics.exposition()
