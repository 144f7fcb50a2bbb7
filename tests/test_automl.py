"""AutoML: searches whose candidates are ordinary jobs on the free slots, with real training
processes (the Dask backend: tests/test_dask.py)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.helpers import dataset, files_under, fit_body, named, wait_until

pytestmark = pytest.mark.anyio


def body(name: str, n_samples: int = 300, n_features: int = 5, **config: Any) -> dict[str, Any]:
    X, y = dataset(n_samples=n_samples, n_features=n_features)
    return {"X": X, "y": y, "config": {"name": name, **config}}


def forests(name: str, **config: Any) -> dict[str, Any]:
    """A search whose candidates take seconds each (forests on 5000 x 20)."""
    return body(name, 5000, 20, model_types=["RandomForestClassifier"], **config)


async def start(client: httpx.AsyncClient, payload: dict[str, Any]) -> dict[str, Any]:
    started = await client.post("/automl", json=payload)
    assert started.status_code == 202, started.text
    assert started.headers["location"] == f"/automl/{started.json()['id']}"
    return dict(started.json())


async def finished(client: httpx.AsyncClient, search_id: str, timeout: float = 120) -> dict:
    """The search once it has ended; every state seen on the way obeys the slot rule."""
    found: dict[str, Any] = {}

    async def ended() -> bool:
        found.update((await client.get(f"/automl/{search_id}")).json())
        assert found["progress"]["running"] <= 2  # the slots of TRAINING_CORES=3
        return found["state"] != "running"

    await wait_until(ended, timeout=timeout, what=f"search {search_id} to end")
    return found


async def test_bad_bodies_are_422_naming_the_problem(client: httpx.AsyncClient) -> None:
    cases = {
        "max_models": body("a"),  # no budget at all
        "NotAModel": body("a", max_models=2, model_types=["NotAModel"]),
        "validation_fraction": body("a", max_models=2, validation_fraction=0.7),
        "metric": body("a", max_models=2, metric="speed"),
    }
    for problem, payload in cases.items():
        refused = await client.post("/automl", json=payload)
        assert refused.status_code == 422, (problem, refused.text)
        assert problem in refused.text, refused.text
    mixed = body("a", max_models=2, model_types=["LogisticRegression"])
    mixed["X"][0][0] = "oops"  # a typo in a column of numbers: what /fit refuses, refused
    refused = await client.post("/automl", json=mixed)
    assert refused.status_code == 422 and "mixes numbers" in refused.json()["detail"]
    assert (await client.get("/automl/nope")).status_code == 404
    assert (await client.get("/automl")).json() == {"searches": []}


async def test_the_winner_is_the_top_row_saved_alone_and_the_seed_repeats_the_search(
    make_client: ClientFactory, models_dir: Path
) -> None:
    async with make_client(training_cores=3) as client:
        first = await finished(client, (await start(client, body("best", max_models=7)))["id"])
        assert first["state"] == "succeeded", first["error"]
        assert first["progress"] == {"finished": 7, "running": 0, "planned": 7}
        board = first["leaderboard"]
        assert [row["rank"] for row in board] == list(range(1, len(board) + 1))
        scores = [row["scores"]["roc_auc"] for row in board]
        assert scores == sorted(scores, reverse=True) and first["metric"] == "roc_auc"
        for row in board:
            assert row["train_seconds"] > 0 and row["predict_us_per_row"] > 0
            assert row["runtime"] in ("onnx", "native")
        drawn = [c["model_type"] for c in first["candidates"]]
        assert drawn[:5] == sorted(set(drawn[:5]), key=drawn.index)  # each type's defaults first
        saved = (await client.get("/models/best")).json()
        top = board[0]
        assert (
            saved["automl"]["candidate"]
            == top["candidate"]
            == first["model"]["automl"]["candidate"]
        )
        assert (saved["model_type"], saved["hyperparameters"]) == (
            top["model_type"],
            top["hyperparameters"],
        )
        assert saved["validation"]["scores"] == top["scores"]
        assert files_under(models_dir) == sorted(
            ["best/1.joblib", "best/1.json", "best/pointers.json"]
            + (["best/1.onnx"] if top["runtime"] == "onnx" else [])
        )
        assert (await client.post("/load", json=named("best"))).status_code == 200
        assert (
            await client.post("/predict", json={"X": body("x")["X"][:3], **named("best")})
        ).status_code == 200

        # The same seed and budget: the same candidates, the same order on the board.
        again = await start(client, body("best", max_models=7, new_version=True, promote=True))
        second = await finished(client, again["id"])
        assert [(c["model_type"], c["hyperparameters"]) for c in second["candidates"]] == [
            (c["model_type"], c["hyperparameters"]) for c in first["candidates"]
        ]
        assert [r["candidate"] for r in second["leaderboard"]] == [r["candidate"] for r in board]
        assert (second["model"]["version"], second["model"]["promoted"]) == (2, True)
        listed = (await client.get("/automl")).json()["searches"]
        assert [s["id"] for s in listed] == [again["id"], first["id"]]


async def test_a_users_fit_gets_the_next_slot_and_the_search_never_exceeds_the_free_ones(
    make_client: ClientFactory,
) -> None:
    async with make_client(training_cores=3) as client:
        search = await start(client, forests("shared", max_models=4))

        async def refused_for_want_of_a_slot() -> bool:
            answer = await client.post("/fit?wait=false", json=fit_body("mine"))
            if answer.status_code == 202:  # a slot was free between two candidates
                await client.post(f"/jobs/{answer.json()['id']}/cancel")
            return answer.status_code == 503  # answered at once, as ever...

        await wait_until(refused_for_want_of_a_slot, what="a /fit refused while both slots train")
        mine: httpx.Response | None = None
        deadline = time.monotonic() + 60
        while mine is None or mine.status_code == 503:  # ...and the next slot that frees is ours
            assert time.monotonic() < deadline, "the user's fit never got a slot"
            mine = await client.post("/fit?wait=false", json=fit_body("mine"))
            await asyncio.sleep(0.05)
        assert mine.status_code == 202, mine.text
        state = (await client.get(f"/automl/{search['id']}")).json()
        assert state["progress"]["running"] <= 1  # the search holds the other slot only
        done = await finished(client, search["id"], timeout=180)
        assert done["state"] == "succeeded"


async def test_max_runtime_secs_and_cancel(make_client: ClientFactory, models_dir: Path) -> None:
    async with make_client(training_cores=3) as client:
        # Long enough for the two training processes to start on one core and finish a
        # candidate (LightGBM and CatBoost import pandas too, once shap has installed it),
        # with the other test process (make test runs two) busy on the other core.
        budget = 10
        timed = await start(client, body("timed", n_samples=2000, max_runtime_secs=budget))
        started = time.monotonic()
        ended = await finished(client, timed["id"])
        assert time.monotonic() - started < budget + 3  # honoured within a few seconds
        assert ended["elapsed_seconds"] < budget + 2 and ended["state"] == "succeeded"

        search = await start(client, forests("stopped", max_models=4))

        async def running() -> bool:
            state = (await client.get(f"/automl/{search['id']}")).json()
            return bool(state["progress"]["running"] == 2)

        await wait_until(running, what="two candidates running")
        asked = time.monotonic()
        cancelled = await client.post(f"/automl/{search['id']}/cancel")
        assert time.monotonic() - asked < 2, "cancel took longer than 2 s"
        assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
        jobs = (await client.get("/jobs")).json()["jobs"]
        candidates = cancelled.json()["candidates"]
        states = {j["id"]: j["state"] for j in jobs}
        assert [states[c["job_id"]] for c in candidates] == [c["state"] for c in candidates]
        assert "cancelled" in [c["state"] for c in candidates] and "running" not in states.values()
        finished_ones = [c["candidate"] for c in candidates if c["state"] == "succeeded"]
        assert sorted(r["candidate"] for r in cancelled.json()["leaderboard"]) == finished_ones
        assert (await client.get("/status")).json()["training"]["active"] == 0
        assert (await client.get("/models/stopped")).status_code == 404
        assert not [f for f in files_under(models_dir) if f.startswith("stopped")]
        again = await client.post(f"/automl/{search['id']}/cancel")
        assert again.status_code == 409


async def test_with_inference_runtime_native_the_candidates_are_served_natively(
    make_client: ClientFactory,
) -> None:
    async with make_client(inference_runtime="native") as client:
        search = await start(client, body("plain", max_models=2))
        done = await finished(client, search["id"])
        assert done["state"] == "succeeded", done["error"]
        assert {row["runtime"] for row in done["leaderboard"]} == {"native"}
        assert (await client.post("/load", json=named("plain"))).status_code == 200
        assert (await client.get("/models/plain")).json()["runtime"] == "native"


async def test_a_search_takes_records_and_its_winner_predicts_records(
    client: httpx.AsyncClient,
) -> None:
    X, y = dataset(n_samples=200, n_features=3)
    records = [{"b": row[1], "a": row[0], "c": row[2]} for row in X]
    config = {"name": "named", "max_models": 2, "model_types": ["LogisticRegression"]}
    search = await start(client, {"records": records, "y": y, "config": config})
    assert (await finished(client, search["id"]))["state"] == "succeeded"
    assert (await client.get("/models/named")).json()["feature_names"] == ["b", "a", "c"]
    assert (await client.post("/load", json=named("named"))).status_code == 200
    reordered = [{"a": r["a"], "c": r["c"], "b": r["b"], "extra": 1.0} for r in records[:5]]
    answer = await client.post("/predict", json={"records": reordered, **named("named")})
    by_x = await client.post(
        "/predict", json={"X": [[r["b"], r["a"], r["c"]] for r in records[:5]], **named("named")}
    )
    assert answer.status_code == 200 and answer.json()["predictions"] == by_x.json()["predictions"]
    both = await client.post(
        "/fit",
        json={
            "X": X,
            "records": records,
            "y": y,
            "config": {"name": "z", "model_type": "LogisticRegression"},
        },
    )
    assert both.status_code == 422 and "not both" in both.json()["detail"]
