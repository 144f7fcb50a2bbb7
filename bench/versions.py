"""What a swap costs: promote (and roll back) a loaded 100-tree forest while 1-row predictions
run at concurrency 8.

For each move: how long the promote call takes (the new version is loaded and checked, then
the pointer switches), the time from sending it to the first answer from the new version,
and the p99 of /predict while the swap runs against the p99 of the seconds before it.
ROUNDS moves, alternating promote and rollback; medians with their range.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sklearn.datasets import make_classification

from bench.harness import Spread, show
from client.report import percentile
from devtools.local_server import uvicorn_server

JSON = {"content-type": "application/json"}

ROUNDS = 6
CONCURRENCY = 8
BEFORE_SECONDS = 2.0
AFTER_SECONDS = 1.0


async def _fit(session: aiohttp.ClientSession, url: str, X: Any, y: Any, new: bool) -> None:
    config = {"name": "swap", "model_type": "RandomForestClassifier", "new_version": new}
    config["hyperparameters"] = {"n_estimators": 100}
    body = orjson.dumps({"X": X, "y": y, "config": config}, option=orjson.OPT_SERIALIZE_NUMPY)
    async with session.post(f"{url}/fit", data=body, headers=JSON) as reply:
        assert reply.status == 201, await reply.text()


async def _traffic(
    session: aiohttp.ClientSession, url: str, body: bytes, stop: asyncio.Event, log: list
) -> None:
    """(sent, answered, version) of each prediction until `stop`."""
    headers = {"content-type": "application/json"}
    while not stop.is_set():
        sent = time.perf_counter()
        async with session.post(f"{url}/predict", data=body, headers=headers) as reply:
            answer = await reply.json()
            if reply.status != 200:
                raise RuntimeError(f"a prediction failed during the swap: {answer}")
        log.append((sent, time.perf_counter(), answer["version"]))


async def _moves(url: str) -> list[dict[str, float]]:
    X, y = make_classification(n_samples=20_000, n_features=20, random_state=1)
    body = orjson.dumps({"X": X[:1], "config": {"name": "swap"}}, option=orjson.OPT_SERIALIZE_NUMPY)
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await _fit(session, url, X, y, new=False)
        await _fit(session, url, X, y, new=True)
        async with session.post(f"{url}/load", json={"config": {"name": "swap"}}) as reply:
            assert reply.status == 200
        log: list[tuple[float, float, int]] = []
        stop = asyncio.Event()
        senders = [
            asyncio.create_task(_traffic(session, url, body, stop, log)) for _ in range(CONCURRENCY)
        ]
        moves = []
        for round_ in range(ROUNDS):
            await asyncio.sleep(BEFORE_SECONDS)
            target = 2 if round_ % 2 == 0 else 1
            path = "promote" if target == 2 else "rollback"
            payload = {"version": 2} if target == 2 else None
            sent = time.perf_counter()
            async with session.post(f"{url}/models/swap/{path}", json=payload) as reply:
                assert reply.status == 200, await reply.text()
            done = time.perf_counter()
            await asyncio.sleep(AFTER_SECONDS)
            before = [a - s for s, a, _ in log if sent - BEFORE_SECONDS <= s < sent]
            during = [a - s for s, a, _ in log if sent <= s <= done]
            first_new = min(a for s, a, v in log if v == target and a >= sent)
            moves.append(
                {
                    "call_s": done - sent,
                    "to_first_answer_s": first_new - sent,
                    "p99_before_ms": percentile(before, 99) * 1e3,
                    "p99_during_ms": percentile(during, 99) * 1e3 if during else float("nan"),
                }
            )
        stop.set()
        await asyncio.gather(*senders)
    return moves


def swap_cost(directory: Path) -> dict[str, Any]:
    with uvicorn_server(directory, env={"MAX_INFERENCE_MODELS": "1"}) as (url, _):
        moves = asyncio.run(_moves(url))
    spreads = {key: Spread.of([m[key] for m in moves]) for key in moves[0]}
    ratio = Spread.of([m["p99_during_ms"] / m["p99_before_ms"] for m in moves])
    show(
        f"Swap: a loaded 100-tree forest promoted and rolled back {ROUNDS} times under 1-row "
        f"predictions at concurrency {CONCURRENCY}, MAX_INFERENCE_MODELS=1 (median, min-max)",
        [
            "promote call s",
            "to the first answer of the new version s",
            "p99 before ms",
            "p99 during ms",
            "during / before",
        ],
        [
            [
                spreads["call_s"].s(),
                spreads["to_first_answer_s"].s(),
                f"{spreads['p99_before_ms'].median:.1f}",
                f"{spreads['p99_during_ms'].median:.1f}",
                f"{ratio.median:.2f} ({ratio.low:.2f}-{ratio.high:.2f})",
            ]
        ],
    )
    return {
        "moves": moves,
        "p99_ratio": statistics.median(m["p99_during_ms"] / m["p99_before_ms"] for m in moves),
    }
