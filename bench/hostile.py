"""What the hostile review's two loads cost /predict, before and after their fix: 1-row
LogisticRegression p99 (wrk, 8 connections) idle, with STREAMS dashboard streams open, and
with /metrics scraped in SCRAPERS loops (no token), on a store of MODELS models. The
design before the fix runs from a git worktree of BEFORE_FIX; both servers are up at once
and the runs alternate, ROUNDS times; medians with their range."""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from sklearn.datasets import make_classification

from bench import wrk
from bench.checkouts import worktree
from bench.harness import Spread, show
from devtools.local_server import uvicorn_server

BEFORE_FIX = "a06f9cf"  # the last commit before issue 27's fixes
ROUNDS = 3
SECONDS = 5
STREAMS = 300
SCRAPERS = 4
MODELS = 7

# N streams of /ui/events, read until killed; prints how many were answered 200.
WATCHERS = """
import asyncio, sys, aiohttp
async def watch(session, url, ready, opened):
    async with session.get(url + "/ui/events") as reply:
        if reply.status == 200:
            await reply.content.readuntil(b"\\n\\n")
            opened.append(1)
        ready.release()
        if reply.status == 200:
            async for _ in reply.content.iter_any():
                pass
async def main(url, n):
    ready, opened = asyncio.Semaphore(0), []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None)) as session:
        tasks = [asyncio.create_task(watch(session, url, ready, opened)) for _ in range(n)]
        for _ in range(n):
            await ready.acquire()
        print(len(opened), flush=True)
        await asyncio.gather(*tasks)
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""
# N loops of GET /metrics, until killed.
SCRAPE = """
import asyncio, sys, aiohttp
async def scrape(session, url):
    while True:
        async with session.get(url + "/metrics") as reply:
            await reply.read()
async def main(url, n):
    async with aiohttp.ClientSession() as session:
        print("ready", flush=True)
        await asyncio.gather(*(scrape(session, url) for _ in range(n)))
asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


@contextmanager
def _load(kind: str, url: str) -> Iterator[str]:
    """The load running in another process while the block runs; what it says."""
    if kind == "idle":
        yield ""
        return
    script, count = (WATCHERS, STREAMS) if kind == "dashboards" else (SCRAPE, SCRAPERS)
    process = subprocess.Popen(
        [sys.executable, "-c", script, url, str(count)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.kill()
        process.wait()


def _prepare(url: str) -> str:
    X, y = make_classification(n_samples=1000, n_features=10, random_state=0)
    with httpx.Client(base_url=url, timeout=300) as client:
        for index in range(MODELS):
            config = {"name": f"m{index}", "model_type": "LogisticRegression"}
            body = {"X": X.tolist(), "y": y.tolist(), "config": config}
            assert client.post("/fit", json=body).status_code == 201
        assert client.post("/load", json={"config": {"name": "m0"}}).status_code == 200
    return orjson.dumps({"X": X[:1].tolist(), "config": {"name": "m0"}}).decode()


def hostile_loads(directory: Path) -> dict[str, Any]:
    if not wrk.installed():
        print("\nhostile section skipped: wrk is not installed")
        return {}
    servers: dict[str, str] = {}
    opened: dict[str, str] = {}
    with ExitStack() as stack:
        previous = stack.enter_context(worktree(BEFORE_FIX, directory))
        if previous is not None:
            url, _ = stack.enter_context(uvicorn_server(directory / "before", cwd=previous))
            servers["before the fix"] = url
        env = {"MAX_EVENT_STREAMS": str(STREAMS)}  # to measure what 300 cost, not refuse them
        servers["after"], _ = stack.enter_context(uvicorn_server(directory / "after", env=env))
        servers["after, default cap"], _ = stack.enter_context(uvicorn_server(directory / "capped"))
        body = {name: _prepare(url) for name, url in servers.items()}
        scripts = {name: wrk.post_script(directory / f"{i}.lua", body[name]) for i, name in
                   enumerate(servers)}  # fmt: skip
        runs: dict[tuple[str, str], list[dict[str, float]]] = {}
        for _ in range(ROUNDS):
            for kind in ("idle", "dashboards", "metrics"):
                for name, url in servers.items():
                    with _load(kind, url) as said:
                        found = wrk.run(f"{url}/predict", scripts[name], 8, SECONDS)
                    runs.setdefault((name, kind), []).append(found)
                    if kind == "dashboards":
                        opened[name] = said
    rows, figures = [], {}
    for (name, kind), found in runs.items():
        p99 = Spread.of([run["p99_ms"] for run in found])
        rate = Spread.of([run["per_second"] for run in found])
        idle = statistics.median(run["p99_ms"] for run in runs[(name, "idle")])
        load = {"idle": "idle", "dashboards": f"{opened[name]} of {STREAMS} streams open",
                "metrics": f"/metrics in {SCRAPERS} loops"}[kind]  # fmt: skip
        rows.append([name, load, f"{p99.median:.2f} ({p99.low:.2f}-{p99.high:.2f})",
                     f"{p99.median / idle:.2f}", f"{rate.median:.0f} ({rate.low:.0f}-{rate.high:.0f})"])  # fmt: skip
        figures[f"{name} / {kind}"] = {"p99_ms": vars(p99), "per_second": vars(rate)}
    show(
        f"/predict 1-row p99 under the review's loads: wrk, 8 connections, {SECONDS} s runs "
        f"alternated {ROUNDS} times, {MODELS} models in the store (median ms, range)",
        ["server", "load", "p99 ms", "against idle", "req/s"],
        rows,
    )
    return figures


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as temporary:
        hostile_loads(Path(temporary))
