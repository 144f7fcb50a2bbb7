"""What open dashboards cost the service: 1-row /predict throughput (wrk, 8 connections,
LogisticRegression) with 0 and with 10 dashboards open (each holding the page's one event
stream, read by another process), alternated ROUNDS times; medians with their range. And
what one page's stream sends a second with JOBS jobs in history, now and at an earlier
commit (`stream_bytes`)."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
from sklearn.datasets import make_classification

from bench import wrk
from bench.checkouts import worktree
from bench.harness import Spread, show
from devtools.local_server import PROJECT_ROOT, uvicorn_server

JOBS = 30
STREAM_SECONDS = 10.0
ROUNDS = 3
SECONDS = 5
DASHBOARDS = 10

# N streams of /ui/events read to the end of the run; "ready" once each has a snapshot.
WATCHERS = """
import asyncio, sys, aiohttp
async def watch(session, url, ready):
    async with session.get(url + "/ui/events") as reply:
        first = True
        async for _ in reply.content.iter_any():
            if first:
                first = False
                ready.release()
async def main(url, n):
    ready = asyncio.Semaphore(0)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session:
        tasks = [asyncio.create_task(watch(session, url, ready)) for _ in range(n)]
        for _ in range(n):
            await ready.acquire()
        print("ready", flush=True)
        await asyncio.gather(*tasks)
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def _throughput(url: str, script: Path, dashboards: int) -> dict[str, float]:
    watchers = None
    if dashboards:
        watchers = subprocess.Popen(
            [sys.executable, "-c", WATCHERS, url, str(dashboards)],
            stdout=subprocess.PIPE,
            text=True,
            cwd=PROJECT_ROOT,
        )
        assert watchers.stdout is not None and watchers.stdout.readline().strip() == "ready"
    try:
        return wrk.run(f"{url}/predict", script, connections=8, seconds=SECONDS)
    finally:
        if watchers is not None:
            watchers.kill()
            watchers.wait()


def dashboards_cost(directory: Path) -> dict[str, Any]:
    if not wrk.installed():
        print("\ndashboard section skipped: wrk is not installed")
        return {}
    X, y = make_classification(n_samples=1000, n_features=10, random_state=0)
    with uvicorn_server(directory / "models") as (url, _):
        config = {"name": "lr", "model_type": "LogisticRegression"}
        with httpx.Client(base_url=url, timeout=120) as client:
            assert client.post("/fit", json={"X": X.tolist(), "y": y.tolist(), "config": config})
            assert client.post("/load", json={"config": {"name": "lr"}}).status_code == 200
        body = orjson.dumps({"X": X[:1].tolist(), "config": {"name": "lr"}}).decode()
        script = wrk.post_script(directory / "predict.lua", body)
        runs: dict[int, list[dict[str, float]]] = {0: [], DASHBOARDS: []}
        for _ in range(ROUNDS):
            for dashboards in runs:
                runs[dashboards].append(_throughput(url, script, dashboards))
    rate = {n: Spread.of([r["per_second"] for r in runs[n]]) for n in runs}
    p99 = {n: statistics.median(r["p99_ms"] for r in runs[n]) for n in runs}
    show(
        f"/predict with dashboards open: wrk, 8 connections, 1-row LogisticRegression, "
        f"{SECONDS} s runs alternated {ROUNDS} times (median req/s, range)",
        ["dashboards open", "req/s", "p99 ms", "against none"],
        [
            [
                n,
                f"{rate[n].median:.0f} ({rate[n].low:.0f}-{rate[n].high:.0f})",
                f"{p99[n]:.2f}",
                f"{rate[n].median / rate[0].median:.3f}",
            ]
            for n in runs
        ],
    )
    return {str(n): {"per_second": vars(rate[n]), "p99_ms": p99[n]} for n in runs}


def _stream_rate(url: str) -> float:
    """Bytes a second one page's stream sends, after its first snapshot, once JOBS jobs
    are in history (nothing else changes meanwhile but the traffic chart)."""
    X, y = make_classification(n_samples=200, n_features=5, random_state=0)
    with httpx.Client(base_url=url, timeout=120) as client:
        for i in range(JOBS):
            config = {
                "name": f"m{i}",
                "model_type": "LogisticRegression",
                "validation_fraction": 0.2,
            }
            fitted = client.post("/fit", json={"X": X.tolist(), "y": y.tolist(), "config": config})
            assert fitted.status_code == 201, fitted.text
        received, started = 0, None
        with client.stream("GET", "/ui/events") as events:
            for chunk in events.iter_bytes():
                if started is None:  # the whole snapshot: sent once a page
                    started = time.monotonic()
                    continue
                received += len(chunk)
                if time.monotonic() - started >= STREAM_SECONDS:
                    break
    return received / STREAM_SECONDS


def stream_bytes(directory: Path, before: str) -> dict[str, float]:
    """One page's stream now and at commit `before`, on stores of JOBS fits each."""
    rates = {}
    with uvicorn_server(directory / "now") as (url, _):
        rates["now"] = _stream_rate(url)
    with worktree(before, directory) as checkout:
        if checkout is not None:
            with uvicorn_server(directory / "before", cwd=checkout) as (url, _):
                rates[before] = _stream_rate(url)
    show(
        f"One dashboard page's stream with {JOBS} jobs in history: bytes a second after "
        "its first snapshot",
        ["server", "bytes/s", "against now"],
        [[name, f"{rate:.0f}", f"{rate / rates['now']:.1f}"] for name, rate in rates.items()],
    )
    return rates


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as temporary:
        if sys.argv[1:2] == ["--stream"]:  # python -m bench.dashboard --stream COMMIT
            stream_bytes(Path(temporary), sys.argv[2])
        else:
            dashboards_cost(Path(temporary))
