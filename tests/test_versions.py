"""Model versions and aliases (docs/API.md, Versions and aliases): every status of the
section in-process, then on real servers the swap under sustained load, the cap, history
across a restart, SIGKILL in a promote loop, and a v2 models directory migrated."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import joblib
import pytest

from tests.conftest import ClientFactory
from tests.helpers import (
    fit_body,
    named,
    run_trust,
    saved_bundle,
    slow_fit_body,
    wait_training,
    wait_until,
)
from tests.servers import uvicorn_server

pytestmark = pytest.mark.anyio
X = fit_body("x")["X"]


def new_version(name: str, model_type: str = "RandomForestClassifier", **config: Any) -> dict:
    body = fit_body(name, model_type)
    body["config"].update(new_version=True, **config)
    return body


async def fit_versions(client: httpx.AsyncClient, name: str, count: int) -> None:
    assert (await client.post("/fit", json=fit_body(name))).status_code == 201
    for _ in range(count - 1):
        assert (await client.post("/fit", json=new_version(name))).status_code == 201


async def predict(client: httpx.AsyncClient, name: str, **choice: Any) -> httpx.Response:
    return await client.post("/predict", json={"X": X[:1], "config": {"name": name, **choice}})


# -- the contract's statuses, in-process -------------------------------------------------------
async def test_a_new_version_trains_beside_the_current_one_which_keeps_serving(
    client: httpx.AsyncClient,
) -> None:
    first = await client.post("/fit", json=fit_body("m"))
    assert (first.status_code, first.json()["version"]) == (201, 1)
    refused = await client.post("/fit", json=fit_body("m"))
    assert refused.status_code == 409 and "new_version" in refused.json()["detail"]
    assert (await client.post("/load", json=named("m"))).json()["version"] == 1
    second = await client.post("/fit", json=new_version("m"))
    assert (second.status_code, second.json()["version"]) == (201, 2)
    assert (await predict(client, "m")).json()["version"] == 1  # not promoted: v1 serves
    info = (await client.get("/models/m")).json()
    assert (info["current_version"], info["version"], info["status"]) == (1, 1, "loaded")
    assert [(v["version"], v["status"]) for v in info["versions"]] == [
        (1, "loaded"),
        (2, "trained"),
    ]
    assert (await client.get("/models/m/versions/2")).json()[
        "model_type"
    ] == "RandomForestClassifier"
    assert (await client.get("/models/m/versions/3")).status_code == 404


async def test_a_new_version_of_a_name_in_training_is_409(client: httpx.AsyncClient) -> None:
    await fit_versions(client, "busy", 1)
    slow = slow_fit_body("busy")
    slow["config"]["new_version"] = True
    started = await client.post("/fit?wait=false", json=slow)
    assert started.status_code == 202
    await wait_training(client, "busy")
    again = await client.post("/fit", json=new_version("busy"))
    assert again.json() == {"detail": "a new version of model 'busy' is being trained right now"}
    # The name still serves and lists its current version, with the one in training.
    info = (await client.get("/models/busy")).json()
    assert (info["current_version"], info["training_version"]) == (1, 2)
    assert (await client.post("/models/busy/promote", json={"version": 2})).status_code == 409
    assert (await client.delete("/models/busy/versions/2")).status_code == 409
    assert (await client.post("/remove", json=named("busy"))).status_code == 409
    assert (await client.post(f"/jobs/{started.json()['id']}/cancel")).status_code == 200
    assert (await client.get("/models/busy/versions")).json()["versions"][-1]["version"] == 1


async def test_choosing_a_version_or_an_alias_and_their_refusals(client: httpx.AsyncClient) -> None:
    await fit_versions(client, "c", 2)
    assert (await client.post("/load", json=named("c", version=2))).json() == {
        "name": "c", "version": 2, "status": "loaded",
    }  # fmt: skip
    assert (await predict(client, "c", version=2)).json()["version"] == 2
    assert (await predict(client, "c")).status_code == 409  # current (1) is not loaded
    assert (await predict(client, "c", version=9)).status_code == 404
    assert (await predict(client, "c", alias="nope")).status_code == 404
    assert (await predict(client, "c", version=1, alias="x")).status_code == 422
    assert (await predict(client, "c", version=0)).status_code == 422
    assert (await client.post("/load", json=named("c", version=7))).status_code == 404
    assert (await client.post("/unload", json=named("c", alias="nope"))).status_code == 404
    assert (await client.put("/models/c/aliases/staging", json={"version": 2})).status_code == 200
    assert (await predict(client, "c", alias="staging")).json()["version"] == 2
    scored = await client.post(
        "/evaluate", json={"X": X[:4], "y": fit_body("c")["y"][:4], **named("c", alias="staging")}
    )
    assert scored.json()["version"] == 2
    assert (await client.put("/models/c/aliases/Bad!", json={"version": 2})).status_code == 422
    assert (await client.put("/models/c/aliases/staging", json={"version": 5})).status_code == 404
    assert (await client.delete("/models/c/aliases/other")).status_code == 404
    assert (await client.post("/unload", json=named("c", version=2))).json()["status"] == "trained"
    assert (await client.get("/models/nobody/history")).status_code == 404


async def test_promote_rollback_and_delete_with_their_refusals(client: httpx.AsyncClient) -> None:
    await fit_versions(client, "p", 3)
    assert (await client.post("/models/p/rollback")).status_code == 409  # no move yet
    assert (await client.post("/models/p/promote", json={"version": 4})).status_code == 404
    assert (await client.post("/models/nobody/promote", json={"version": 1})).status_code == 404
    promoted = await client.post("/models/p/promote", json={"version": 3})
    assert promoted.json() == {"name": "p", "current_version": 3, "aliases": {}}
    assert (await client.post("/models/p/rollback")).json()["current_version"] == 1
    assert (await client.post("/models/p/rollback")).json()["current_version"] == 3
    await client.put("/models/p/aliases/champion", json={"version": 1})
    for version, why in ((3, "is current"), (1, "champion")):
        refused = await client.delete(f"/models/p/versions/{version}")
        assert refused.status_code == 409 and why in refused.json()["detail"]
    await client.post("/load", json=named("p", version=2))
    assert "is loaded" in (await client.delete("/models/p/versions/2")).json()["detail"]
    await client.post("/unload", json=named("p", version=2))
    assert (await client.delete("/models/p/versions/2")).json()["removed"] is True
    assert (await client.delete("/models/p/versions/2")).status_code == 404
    # Numbers are not reused: the next version is 4.
    assert (await client.post("/fit", json=new_version("p"))).json()["version"] == 4
    moves = [
        (m["pointer"], m["from"], m["to"])
        for m in (await client.get("/models/p/history")).json()["history"]
    ]
    assert moves == [
        ("current", None, 1), ("current", 1, 3), ("current", 3, 1), ("current", 1, 3),
        ("champion", None, 1),
    ]  # fmt: skip


async def test_fit_with_promote_swaps_a_loaded_current_version(client: httpx.AsyncClient) -> None:
    await fit_versions(client, "auto", 1)
    await client.post("/load", json=named("auto"))
    fitted = await client.post("/fit", json=new_version("auto", promote=True))
    assert (fitted.json()["version"], fitted.json()["promoted"]) == (2, True)
    assert (await predict(client, "auto")).json()["version"] == 2
    status = (await client.get("/status")).json()["inference"]
    assert status["loaded_versions"] == [{"name": "auto", "version": 2}]
    assert status["loaded"] == ["auto"]


async def test_remove_takes_every_version_and_the_name_can_start_again(
    client: httpx.AsyncClient, models_dir: Path
) -> None:
    await fit_versions(client, "gone", 2)
    await client.post("/load", json=named("gone", version=2))
    assert (await client.post("/remove", json=named("gone"))).status_code == 200
    assert not (models_dir / "gone").exists()
    assert (await client.get("/status")).json()["inference"]["loaded_versions"] == []
    # The name starts again above its old numbers: files, captured rows and caches keyed by
    # (name, version) never meet the removed model (issue 37, item 2).
    assert (await client.post("/fit", json=fit_body("gone"))).json()["version"] == 3


# -- the swap, the cap, restarts and crashes on real servers -------------------------------
async def _hammer(url: str, stop: asyncio.Event, seen: list[tuple[int, int]]) -> None:
    """Predict over and over until `stop`; note (status, version) of each answer in order."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        while not stop.is_set():
            reply = await predict(client, "live")
            seen.append((reply.status_code, reply.json().get("version", 0)))


async def test_promote_and_rollback_under_load_fail_no_request(tmp_path: Path) -> None:
    env = {"MAX_INFERENCE_MODELS": "1"}
    with uvicorn_server(tmp_path / "models", env=env) as (url, _):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await fit_versions(client, "live", 2)
            assert (await client.post("/load", json=named("live"))).status_code == 200
            # The cap is 1 and version 1 holds it: version 2 can't be loaded by hand...
            assert (await client.post("/load", json=named("live", version=2))).status_code == 409
            stop = asyncio.Event()
            streams: list[list[tuple[int, int]]] = [[] for _ in range(8)]
            load = [asyncio.create_task(_hammer(url, stop, seen)) for seen in streams]

            async def answered(count: int) -> bool:
                return sum(map(len, streams)) >= count

            await wait_until(lambda: answered(200), timeout=30, what="200 answers before")
            # ...but a swap may hold one above the cap while it lasts.
            sending_promote = [len(seen) for seen in streams]
            promoted = await client.post("/models/live/promote", json={"version": 2})
            assert promoted.status_code == 200
            switched = [len(seen) for seen in streams]
            await wait_until(
                lambda: answered(sum(switched) + 400), timeout=30, what="answers after"
            )
            sending_rollback = [len(seen) for seen in streams]
            rolled = await client.post("/models/live/rollback")
            assert rolled.json()["current_version"] == 1
            back = [len(seen) for seen in streams]
            await wait_until(
                lambda: answered(sum(back) + 200), timeout=30, what="answers at the end"
            )
            stop.set()
            await asyncio.gather(*load)
            status = (await client.get("/status")).json()["inference"]
            metrics = (await client.get("/metrics")).text
    assert Counter(code for seen in streams for code, _ in seen) == {200: sum(map(len, streams))}
    moments = zip(streams, sending_promote, switched, sending_rollback, back, strict=True)
    for seen, before_promote, at_promote, before_rollback, at_rollback in moments:
        # Answered before the promote was sent: version 1; sent after it answered and before
        # the rollback was: 2 only; after the rollback answered: 1 only. (While a move is
        # under way, until it answers, either version may answer.)
        assert {v for _, v in seen[:before_promote]} == {1}
        assert {v for _, v in seen[at_promote + 1 : before_rollback]} <= {2}
        assert {v for _, v in seen[at_rollback + 1 :]} <= {1}
    assert status["loaded_versions"] == [{"name": "live", "version": 1}]  # the cap, again
    assert 'model_server_version_moves_total{outcome="swapped"} 2.0' in metrics


async def test_history_and_pointers_survive_a_restart(tmp_path: Path) -> None:
    models = tmp_path / "models"
    with uvicorn_server(models) as (url, _):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await fit_versions(client, "kept", 2)
            await client.post("/models/kept/promote", json={"version": 2})
            await client.put("/models/kept/aliases/old", json={"version": 1})
            before = (await client.get("/models/kept/history")).json()
    with uvicorn_server(models) as (url, _):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            assert (await client.get("/models/kept/history")).json() == before
            info = (await client.get("/models/kept")).json()
            assert (info["current_version"], info["aliases"]) == (2, {"old": 1})
            assert (await client.post("/load", json=named("kept"))).json()["version"] == 2


async def test_a_sigkill_during_a_promote_loop_leaves_a_pointer_that_loads(tmp_path: Path) -> None:
    models = tmp_path / "models"
    with uvicorn_server(models) as (url, server):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            await fit_versions(client, "k", 3)
            await client.post("/load", json=named("k"))

            async def promote_forever() -> None:
                for i in range(10_000):
                    try:
                        await client.post("/models/k/promote", json={"version": 1 + i % 3})
                    except httpx.TransportError:
                        return

            loop = asyncio.create_task(promote_forever())

            async def moved_a_few() -> bool:
                return len(json.loads((models / "k" / "pointers.json").read_text())["history"]) > 6

            await wait_until(moved_a_few, timeout=30, what="a few promotes")
            os.kill(server.pid, signal.SIGKILL)
            await loop
    with uvicorn_server(models) as (url, _):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            current = (await client.get("/models/k")).json()["current_version"]
            assert current in (1, 2, 3)
            assert (await client.post("/load", json=named("k"))).json()["version"] == current
            assert (await predict(client, "k")).json()["version"] == current
            versions = (await client.get("/models/k/versions")).json()["versions"]
            assert [v["version"] for v in versions] == [1, 2, 3]


async def test_a_v2_models_directory_is_migrated_with_nothing_lost(
    make_client: ClientFactory, models_dir: Path, tmp_path: Path
) -> None:
    async with make_client() as client:
        body = fit_body("legacy")
        body["config"]["validation_fraction"] = 0.25
        fitted = (await client.post("/fit", json=body)).json()
        await client.post("/load", json=named("legacy"))
        expected = (await predict(client, "legacy")).json()["predictions"]
    # The v2 layout: two files side by side in MODELS_PATH, the compiled copy inside the
    # model's, no signature.
    joblib.dump(saved_bundle(models_dir, "legacy"), models_dir / "legacy.joblib")
    metadata = json.loads((models_dir / "legacy" / "1.json").read_text())
    v2_metadata = {k: v for k, v in metadata.items() if k not in ("signature", "serving")}
    (models_dir / "legacy.json").write_text(json.dumps(v2_metadata))
    shutil.rmtree(models_dir / "legacy")
    with uvicorn_server(models_dir) as (url, _):
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            untrusted = (await client.get("/models/legacy")).json()
            assert (untrusted["current_version"], untrusted["status"]) == (1, "untrusted")
            assert "legacy/1: signed" in run_trust(models_dir, "sign", "legacy")
            info = (await client.get("/models/legacy")).json()
            assert (info["current_version"], info["validation"]) == (1, fitted["validation"])
            assert (await client.post("/load", json=named("legacy"))).status_code == 200
            answer = (await predict(client, "legacy")).json()
            assert (answer["version"], answer["predictions"]) == (1, expected)
    # and the serving set, which names legacy: it was loaded when the server stopped
    assert sorted(p.name for p in models_dir.iterdir()) == ["_serving.json", "legacy"]


async def test_concurrent_requests_for_two_versions_are_never_answered_by_the_other(
    client: httpx.AsyncClient,
) -> None:
    """Each loaded version has its own micro-batcher: requests that arrive together for two
    versions are merged per version, never into one call."""
    assert (await client.post("/fit", json=fit_body("mix"))).status_code == 201
    flipped = fit_body("mix")  # the same rows, every label swapped: opposite predictions
    flipped["y"] = [{1: 11, 11: 1}[label] for label in flipped["y"]]
    flipped["config"]["new_version"] = True
    assert (await client.post("/fit", json=flipped)).status_code == 201
    for version in (1, 2):
        assert (await client.post("/load", json=named("mix", version=version))).status_code == 200
    alone = {v: (await predict(client, "mix", version=v)).json()["predictions"] for v in (1, 2)}
    assert alone[1] != alone[2]
    versions = [1 + i % 2 for i in range(60)]
    replies = await asyncio.gather(*(predict(client, "mix", version=v) for v in versions))
    for version, reply in zip(versions, replies, strict=True):
        assert reply.json()["version"] == version
        assert reply.json()["predictions"] == alone[version]


async def test_a_swap_whose_new_version_does_not_load_moves_nothing(
    client: httpx.AsyncClient, models_dir: Path
) -> None:
    await fit_versions(client, "bad", 2)
    assert (await client.post("/load", json=named("bad"))).status_code == 200
    damaged = models_dir / "bad" / "2.joblib"
    damaged.write_bytes(b"\x80" * damaged.stat().st_size)  # the same size: its tag tells
    refused = await client.post("/models/bad/promote", json={"version": 2})
    assert refused.status_code == 409 and "version 2 is untrusted" in refused.json()["detail"]
    assert (await client.get("/models/bad")).json()["current_version"] == 1
    status = (await client.get("/status")).json()["inference"]
    assert status["loaded_versions"] == [{"name": "bad", "version": 1}]
    assert (await predict(client, "bad")).json()["version"] == 1
    metrics = (await client.get("/metrics")).text
    assert 'model_server_version_moves_total{outcome="failed"} 1.0' in metrics
    assert [m["to"] for m in (await client.get("/models/bad/history")).json()["history"]] == [1]
