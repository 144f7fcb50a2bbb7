"""Load, predict, unload, remove, remove_all, the listings and status: every contract row."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.conftest import ClientFactory
from tests.helpers import (
    answered,
    core_plan,
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


async def test_health(client) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_load_predict_unload_cycle(client) -> None:
    await fit(client, "lr")
    X, y = dataset()
    response = await client.post("/predict", json={"X": X[:3], **named("lr")})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        'model \'lr\' is not loaded: POST /load with {"config": {"name": "lr"}} first'
    )

    assert (await client.post("/load", json=named("lr"))).json() == {
        "name": "lr",
        "version": 1,
        "status": "loaded",
    }
    again = await client.post("/load", json=named("lr"))
    assert again.status_code == 200
    assert (await client.get("/status")).json()["inference"] == {
        "max_models": 2,
        "loaded": ["lr"],
        "loaded_versions": [{"name": "lr", "version": 1}],
    }

    response = await client.post("/predict", json={"X": X[:3], **named("lr")})
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) == {"name", "version", "predictions", "request_id"}
    assert answer["name"] == "lr"
    assert len(answer["predictions"]) == 3
    assert set(answer["predictions"]) <= set(y)

    assert (await client.post("/unload", json=named("lr"))).json() == {
        "name": "lr",
        "version": 1,
        "status": "trained",
    }
    assert (await client.post("/unload", json=named("lr"))).status_code == 200
    assert (await client.get("/status")).json()["inference"]["loaded"] == []
    assert (await client.post("/predict", json={"X": X[:3], **named("lr")})).status_code == 409


@pytest.mark.parametrize("path", ["/load", "/unload", "/remove"])
async def test_unknown_name_is_404(client, path: str) -> None:
    response = await client.post(path, json=named("ghost"))
    assert response.status_code == 404
    assert response.json() == {"detail": "model 'ghost' does not exist"}


async def test_predict_unknown_is_404_and_models_unknown_is_404(client) -> None:
    response = await client.post("/predict", json={"X": [[1.0]], **named("ghost")})
    assert response.status_code == 404
    assert response.json() == {"detail": "model 'ghost' does not exist"}
    assert (await client.get("/models/ghost")).status_code == 404


async def test_predict_bad_input_is_422(client) -> None:
    await fit(client, "lr")
    await client.post("/load", json=named("lr"))
    wrong_width = await client.post("/predict", json={"X": [[1.0, 2.0]], **named("lr")})
    assert wrong_width.status_code == 422
    assert wrong_width.json()["detail"] == "model 'lr' expects 4 features per row, got 2"
    assert (await client.post("/predict", json={"X": [], **named("lr")})).status_code == 422
    ragged = await client.post("/predict", json={"X": [[1.0] * 4, [1.0] * 3], **named("lr")})
    assert ragged.status_code == 422
    assert (
        await client.post("/predict", json={"X": [["a"] * 4], **named("lr")})
    ).status_code == 422
    assert (await client.post("/predict", json={"X": [[1.0] * 4]})).status_code == 422


async def test_load_beyond_the_cap_is_409_naming_the_loaded(client) -> None:
    for name in ("a", "b", "c"):
        await fit(client, name)
    assert (await client.post("/load", json=named("a"))).status_code == 200
    assert (await client.post("/load", json=named("b"))).status_code == 200
    response = await client.post("/load", json=named("c"))
    assert response.status_code == 409
    assert response.json()["detail"] == (
        "cannot load 'c': 2 model(s) are loaded already (a, b); POST /unload one of them first"
    )
    await client.post("/unload", json=named("a"))
    assert (await client.post("/load", json=named("c"))).status_code == 200


async def test_model_in_training_cannot_be_loaded_removed_or_predicted(client) -> None:
    slow = asyncio.create_task(client.post("/fit", json=slow_fit_body("slow")))
    try:
        await wait_training(client, "slow")
        load = await client.post("/load", json=named("slow"))
        assert load.status_code == 409
        assert "still training" in load.json()["detail"]
        remove = await client.post("/remove", json=named("slow"))
        assert remove.status_code == 409
        assert "being trained" in remove.json()["detail"]
        assert (
            await client.post("/predict", json={"X": [[0.0] * 20], **named("slow")})
        ).status_code == 409

        info = (await client.get("/models/slow")).json()
        assert info["status"] == "training"
        assert info["n_samples"] == 2000
        assert info["size_bytes"] is None
        removed = (await client.post("/remove_all")).json()
        assert removed == {"removed": [], "training": ["slow"]}
    finally:
        slow.cancel()


async def test_remove_unloads_then_deletes_the_files(client, models_dir: Path) -> None:
    await fit(client, "gone")
    await client.post("/load", json=named("gone"))
    response = await client.post("/remove", json=named("gone"))
    assert response.status_code == 200
    assert response.json() == {"name": "gone", "removed": True}
    assert models_in(models_dir) == []
    assert (await client.get("/status")).json()["inference"]["loaded"] == []
    assert (await client.post("/remove", json=named("gone"))).status_code == 404
    # The name is free again.
    await fit(client, "gone")


async def test_remove_all(client, models_dir: Path) -> None:
    for name in ("b", "a"):
        await fit(client, name)
    await client.post("/load", json=named("a"))
    response = await client.post("/remove_all")
    assert response.status_code == 200
    assert response.json() == {"removed": ["a", "b"], "training": []}
    assert models_in(models_dir) == []
    assert (await client.get("/models")).json() == {"models": []}
    assert (await client.get("/status")).json()["inference"]["loaded"] == []
    assert (await client.post("/remove_all")).json() == {"removed": [], "training": []}


async def test_models_listing(client) -> None:
    await fit(client, "zeta", "RandomForestClassifier")
    await fit(client, "alpha")
    await client.post("/load", json=named("zeta"))
    models = (await client.get("/models")).json()["models"]
    assert [m["name"] for m in models] == ["alpha", "zeta"]
    assert [m["status"] for m in models] == ["trained", "loaded"]
    for info in models:
        assert info["size_bytes"] > 0
        assert info["created_at"].endswith("+00:00")
        assert info["n_features"] == 4
    one = (await client.get("/models/zeta")).json()
    assert [(v["version"], v["status"]) for v in one.pop("versions")] == [(1, "loaded")]
    assert models[1].pop("versions") is None  # the list leaves the versions out
    assert one == models[1]
    assert one["hyperparameters"] == {"n_jobs": 1}


async def test_status_reports_capacity(make_client: ClientFactory) -> None:
    async with make_client(training_cores=4, max_inference_models=3) as client:
        assert (await client.get("/status")).json() == {
            "training": {
                "backend": "local",
                "cores": 4,
                **core_plan(),
                "slots": 3,
                "active": 0,
                "models": [],
                "jobs": [],
            },
            "inference": {"max_models": 3, "loaded": [], "loaded_versions": []},
        }


async def test_racing_fits_of_one_name_train_exactly_once(make_client: ClientFactory) -> None:
    async with make_client(training_cores=3) as client:
        body = fit_body("race")
        responses = await asyncio.gather(*(client.post("/fit", json=body) for _ in range(12)))
        codes = sorted(r.status_code for r in responses)
        assert codes.count(201) == 1
        assert set(codes) == {201, 409}
        assert [m["name"] for m in (await client.get("/models")).json()["models"]] == ["race"]


async def test_racing_loads_never_exceed_the_cap(client) -> None:
    names = [f"m{i}" for i in range(6)]
    for name in names:
        await fit(client, name)
    responses = await asyncio.gather(
        *(client.post("/load", json=named(name)) for name in names for _ in range(3))
    )
    assert sorted({r.status_code for r in responses}) == [200, 409]
    loaded = (await client.get("/status")).json()["inference"]["loaded"]
    assert len(loaded) == 2
    winners = {r.json()["name"] for r in responses if r.status_code == 200}
    assert winners == set(loaded)


async def test_models_survive_a_restart(make_client: ClientFactory) -> None:
    X, _ = dataset()
    async with make_client() as client:
        await fit(client, "keep", "XGBClassifier")
        await client.post("/load", json=named("keep"))
        before = answered(await client.post("/predict", json={"X": X, **named("keep")}))
        info_before = (await client.get("/models/keep")).json()
    async with make_client() as client:
        info = (await client.get("/models/keep")).json()
        # What serves a model is told while it is loaded only.
        unloaded = {"status": "trained", "runtime": None, "runtime_detail": None, "estimator": None}
        [version_before] = info_before.pop("versions")
        [version] = info.pop("versions")
        assert info == {**info_before, **unloaded}
        assert version == {**version_before, **unloaded}
        assert (await client.post("/load", json=named("keep"))).status_code == 200
        after = answered(await client.post("/predict", json={"X": X, **named("keep")}))
        assert after == before


async def test_leftovers_of_an_interrupted_write_are_cleaned_at_start_up(
    make_client: ClientFactory, models_dir: Path
) -> None:
    async with make_client() as client:
        await fit(client, "whole")
    (models_dir / "whole" / ".2.joblib.0123abcd.tmp").write_bytes(b"partial")
    (models_dir / "orphan").mkdir()  # a first version whose pointers were never written
    (models_dir / "orphan" / "1.joblib").write_bytes(b"model without metadata")
    async with make_client() as client:
        assert [m["name"] for m in (await client.get("/models")).json()["models"]] == ["whole"]
        assert (await client.post("/load", json=named("orphan"))).status_code == 404
    assert files_under(models_dir) == [
        "whole/1.joblib",
        "whole/1.json",
        "whole/pointers.json",
    ]
