"""What metrics, tokens and the access log cost on the predict hot path.

Four servers run side by side on the same model: metrics off (the floor for this table),
metrics on (the default), metrics on with bearer tokens checked on every request, and
metrics on with the text access log (written to a file). Single-row LogisticRegression at
concurrency 8, the cheapest prediction there is, so any per-request cost shows in full; the
runs are alternated ROUNDS times and the medians compared.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
from sklearn.datasets import make_classification

from bench.harness import LoadResult, load, show, timed_post
from devtools.local_server import uvicorn_server

ROUNDS = 5
CONCURRENCY = 8
REQUESTS = 3_000
MAX_SECONDS = 4.0
TOKEN = "bench-management-token"
CONFIGURATIONS: dict[str, dict[str, str]] = {
    "metrics off": {"METRICS": "false", "ACCESS_LOG": "off"},
    "metrics on (default)": {"METRICS": "true", "ACCESS_LOG": "off"},
    "metrics on + bearer token": {
        "METRICS": "true",
        "ACCESS_LOG": "off",
        "MANAGEMENT_TOKEN": TOKEN,
    },
    "metrics on + access log (text)": {"METRICS": "true", "ACCESS_LOG": "text"},
}


async def _prepare(session: aiohttp.ClientSession, url: str, headers: dict[str, str]) -> None:
    X, y = make_classification(n_samples=1_000, n_features=10, random_state=1)
    body = orjson.dumps(
        {"X": X, "y": y, "config": {"name": "lr", "model_type": "LogisticRegression"}},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    async with session.post(
        f"{url}/fit", data=body, headers={"content-type": "application/json", **headers}
    ) as reply:
        assert reply.status == 201, await reply.text()
    async with session.post(
        f"{url}/load", json={"config": {"name": "lr"}}, headers=headers
    ) as reply:
        assert reply.status == 200, await reply.text()


async def _measure(urls: dict[str, str]) -> dict[str, list[LoadResult]]:
    rows = np.random.default_rng(3).normal(size=(50, 10))
    bodies = [
        orjson.dumps(
            {"X": rows[i : i + 1], "config": {"name": "lr"}}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        for i in range(len(rows))
    ]
    runs: dict[str, list[LoadResult]] = {label: [] for label in urls}
    timeout = aiohttp.ClientTimeout(total=600)
    for label, url in urls.items():
        headers = {"Authorization": f"Bearer {TOKEN}"} if "token" in label else {}
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await _prepare(session, url, headers)
    for _ in range(ROUNDS):
        for label, url in urls.items():
            headers = {"Authorization": f"Bearer {TOKEN}"} if "token" in label else {}
            connector = aiohttp.TCPConnector(limit=CONCURRENCY)
            async with aiohttp.ClientSession(
                timeout=timeout, connector=connector, headers=headers
            ) as session:
                counter = iter(range(10**9))

                async def send(
                    url: str = url, session: Any = session, counter: Any = counter
                ) -> float:
                    body = bodies[next(counter) % len(bodies)]
                    return await timed_post(session, f"{url}/predict", body, 200)

                runs[label].append(await load(send, CONCURRENCY, REQUESTS, MAX_SECONDS))
    return runs


def overhead(directory: Path) -> list[dict[str, Any]]:
    with contextlib.ExitStack() as servers:
        urls = {}
        for index, (label, env) in enumerate(CONFIGURATIONS.items()):
            url, _ = servers.enter_context(
                uvicorn_server(
                    directory / f"models-{index}",
                    env=env,
                    log=directory / f"server-{index}.log",
                )
            )
            urls[label] = url
        runs = asyncio.run(_measure(urls))
    floor = statistics.median(r.per_second for r in runs["metrics off"])
    rows, results = [], []
    for label, results_ in runs.items():
        rates = [r.per_second for r in results_]
        median = statistics.median(rates)
        p99 = statistics.median(r.p(99) for r in results_) * 1e3
        rows.append(
            [
                label,
                f"{median:.0f} ({min(rates):.0f}-{max(rates):.0f})",
                f"{p99:.2f}",
                f"{median / floor:.3f}",
            ]
        )
        results.append(
            {"configuration": label, "per_second": median, "p99_ms": p99, "ratio": median / floor}
        )
    show(
        f"Metrics, tokens and access log on the hot path: 1-row LogisticRegression predict at "
        f"concurrency {CONCURRENCY}, {ROUNDS} alternated runs (req/s median, min-max)",
        ["server", "req/s", "p99 ms", "ratio to metrics off"],
        rows,
    )
    return results
