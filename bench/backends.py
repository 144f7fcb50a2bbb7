"""The Dask backend against the local one, each through its own real server on 127.0.0.1:
the medium fit's wall time, a 100 MB forest (the model travels back as bytes), the time to
a free slot after a cancel, and the speed-up of 2 fits on 2 one-thread workers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sklearn.datasets import make_classification

from bench import jobs
from bench.harness import Spread, show, timed_post
from devtools.dask_cluster import dask_cluster
from devtools.local_server import uvicorn_server

REPEATS = 3
CANCELS = 10
Case = tuple[str, dict[str, Any], int, int, float]  # type, hyperparameters, rows, columns, noise
MEDIUM: Case = ("RandomForestClassifier", {"n_estimators": 50, "random_state": 0}, 20_000, 20, 0.01)
# On labels half noise, fully grown trees take ~0.5 MB each: 200 of them, about 100 MB.
BIG_FOREST: Case = (
    "RandomForestClassifier",
    {"n_estimators": 200, "random_state": 0},
    20_000,
    20,
    0.5,
)


def body(name: str, case: Case) -> bytes:
    model_type, hyperparameters, n_samples, n_features, noise = case
    X, y = make_classification(
        n_samples=n_samples, n_features=n_features, flip_y=noise, random_state=0
    )
    config = {"name": name, "model_type": model_type, "hyperparameters": hyperparameters}
    return orjson.dumps({"X": X, "y": y, "config": config}, option=orjson.OPT_SERIALIZE_NUMPY)


async def _remove(session: aiohttp.ClientSession, url: str, name: str) -> None:
    async with session.post(f"{url}/remove", json={"config": {"name": name}}) as reply:
        await reply.read()


async def _fit_seconds(
    session: aiohttp.ClientSession, url: str, case: Case, repeats: int = REPEATS
) -> tuple[Spread, int]:
    times, size = [], 0
    for i in range(repeats):
        times.append(await timed_post(session, f"{url}/fit", body(f"b{i}", case), 201))
        async with session.get(f"{url}/models/b{i}") as reply:
            size = (await reply.json())["size_bytes"]
        await _remove(session, url, f"b{i}")
    return Spread.of(times), size


async def _speed_up(session: aiohttp.ClientSession, url: str) -> tuple[float, float]:
    bodies = [body(f"p{i}", MEDIUM) for i in range(2)]
    started = time.perf_counter()
    for b in bodies:
        await timed_post(session, f"{url}/fit", b, 201)
    one_by_one = time.perf_counter() - started
    for i in range(2):
        await _remove(session, url, f"p{i}")
    started = time.perf_counter()
    await asyncio.gather(*(timed_post(session, f"{url}/fit", b, 201) for b in bodies))
    together = time.perf_counter() - started
    for i in range(2):
        await _remove(session, url, f"p{i}")
    return one_by_one, together


async def _measure(urls: dict[str, str]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    timeout = aiohttp.ClientTimeout(total=1200)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for backend, url in urls.items():
            medium, _ = await _fit_seconds(session, url, MEDIUM)
            big, size = await _fit_seconds(session, url, BIG_FOREST, repeats=2)
            cancel = await jobs.cancel_latencies(session, url, slots=2)
            one_by_one, together = await _speed_up(session, url)
            results[backend] = {
                "medium_s": medium,
                "big_forest_s": big,
                "big_forest_mb": size / 1e6,
                "cancel_s": cancel,
                "sequential_s": one_by_one,
                "parallel_s": together,
            }
    return results


def compare(directory: Path) -> dict[str, Any]:
    """A local server (2 slots) and a Dask server on a 2-worker cluster, one after another."""
    with (
        dask_cluster(directory / "dask-logs") as cluster,
        uvicorn_server(directory / "local", training_cores=3) as (local_url, _),
        uvicorn_server(
            directory / "dask",
            env={"TRAINING_BACKEND": "dask", "DASK_SCHEDULER_ADDRESS": cluster.address},
        ) as (dask_url, _),
    ):
        results = asyncio.run(_measure({"local": local_url, "dask": dask_url}))
    local, dask = results["local"], results["dask"]
    rows = [
        [
            backend,
            values["medium_s"].s(),
            values["big_forest_s"].s(),
            f"{values['big_forest_mb']:.0f}",
            values["cancel_s"].ms(),
            f"{values['sequential_s'] / values['parallel_s']:.2f}",
        ]
        for backend, values in results.items()
    ]
    show(
        f"Dask backend against local: POST /fit wall time (median, min-max of {REPEATS}, the forest 2; s), "
        f"cancel to a free slot ({CANCELS} cancels; ms), speed-up of 2 medium fits at once",
        ["backend", "medium fit s", "100 MB forest s", "forest MB", "cancel ms", "2-fit speed-up"],
        rows,
    )
    medium_ratio = dask["medium_s"].median / local["medium_s"].median
    transfer = dask["big_forest_s"].median - local["big_forest_s"].median
    print(
        f"dask / local: medium fit {medium_ratio:.3f}; the {dask['big_forest_mb']:.0f} MB forest "
        f"costs {transfer:+.2f} s more on dask (sent back as bytes, then written here)"
    )
    return {
        backend: {
            key: (value.median if isinstance(value, Spread) else value)
            for key, value in values.items()
        }
        for backend, values in results.items()
    } | {"medium_ratio": medium_ratio, "big_forest_extra_s": transfer}
