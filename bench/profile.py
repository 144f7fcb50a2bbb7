"""Where a 1-row prediction's time goes: py-spy samples the server while wrk loads it.

The service (and the previous design, from a git worktree as in bench/ceiling.py) serves a
1-row LogisticRegression at 8 connections (`--model rf --connections 1`: the ceiling's
one-connection forest); py-spy records the server for SECONDS.
Printed per server: the share of samples in which each part of the path is on the stack
(inclusive), and the functions that hold the most samples themselves (self time).
"""

from __future__ import annotations

import collections
import shutil
import subprocess
import sys
import threading
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from sklearn.datasets import make_classification

from bench import wrk
from bench.ceiling import MODELS, PREVIOUS_DESIGN
from bench.checkouts import worktree
from bench.harness import show
from devtools.local_server import uvicorn_server

SECONDS = 8
# requirements-dev installs it beside this interpreter, which need not be on PATH.
PY_SPY = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
IDLE_WORKER = "_worker (concurrent/futures/thread.py"
CONNECTIONS = 8
# Parts of the path, each by a frame that marks it (the first that matches, in this order).
PARTS = {
    "access log": ("logging/__init__.py", "QueueHandler"),
    "metrics": ("prometheus_client/",),
    "FastAPI routing, dependencies, validation": ("fastapi/routing.py", "fastapi/dependencies"),
    "Starlette middleware and routing": ("starlette/middleware", "starlette/routing.py"),
    "body parsing (orjson, numpy)": ("server/ingest/",),
    "prediction (model, checks)": ("server/inference/",),
    "uvicorn and the event loop": ("uvicorn/", "uvloop", "asyncio/"),
}


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rpartition(" ")
    return stack.split(";"), int(count)


def summarize(raw: str) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """Inclusive share per part, and the top functions by self time, from py-spy's raw
    (collapsed) output."""
    total, inclusive, own = 0, collections.Counter[str](), collections.Counter[str]()
    for line in raw.splitlines():
        if not line.strip():
            continue
        frames, count = _frames(line)
        if IDLE_WORKER in frames[-1]:  # a thread-pool thread waiting for work
            continue
        total += count
        own[frames[-1]] += count
        for part, marks in PARTS.items():
            if any(mark in frame for frame in frames for mark in marks):
                inclusive[part] += count
                break
    shares = {part: inclusive[part] / total for part in PARTS} if total else {}
    return shares, [(frame, count / total) for frame, count in own.most_common(12)]


def _record(url: str, pid: int, script: Path, output: Path, connections: int) -> str:
    load = threading.Thread(
        target=subprocess.run,
        args=(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{SECONDS + 2}s",
                "-s",
                str(script),
                f"{url}/predict",
            ],
        ),
        kwargs={"capture_output": True},
    )
    load.start()
    assert PY_SPY is not None
    command = [PY_SPY, "record", "-p", str(pid), "-d", str(SECONDS), "-r", "500"]
    subprocess.run([*command, "-f", "raw", "-o", str(output), "--nonblocking"], capture_output=True)
    load.join()
    return output.read_text()


def profile(directory: Path, model: str = "lr", connections: int = CONNECTIONS) -> dict[str, Any]:
    if not wrk.installed() or PY_SPY is None:
        print("\nProfile: skipped, it needs wrk and py-spy")
        return {"skipped": "wrk or py-spy missing"}
    model_type, hyperparameters, features = MODELS[model]
    X, y = make_classification(n_samples=1000, n_features=features, random_state=0)
    config = {"name": model, "model_type": model_type, "hyperparameters": hyperparameters}
    fit = {"X": X.tolist(), "y": y.tolist(), "config": config}
    body = httpx.Request("POST", "/", json={"X": X[:1].tolist(), "config": {"name": model}}).content
    script = wrk.post_script(directory / "predict.lua", body.decode())
    results: dict[str, Any] = {}
    with ExitStack() as stack:
        servers = {"service": Path(__file__).resolve().parent.parent}
        previous = stack.enter_context(worktree(PREVIOUS_DESIGN, directory))
        if previous is not None:
            servers["previous"] = previous
        for label, code in servers.items():
            url, process = stack.enter_context(
                uvicorn_server(
                    directory / label,
                    env={"ACCESS_LOG": "text"},
                    log=directory / f"{label}.log",
                    cwd=code,
                )
            )
            with httpx.Client(base_url=url, timeout=60) as client:
                assert client.post("/fit", json=fit).status_code == 201
                assert client.post("/load", json={"config": {"name": model}}).status_code == 200
            raw = _record(url, process.pid, script, directory / f"{label}.txt", connections)
            shares, top = summarize(raw)
            results[label] = {"parts": shares, "top_self": top}
            show(
                f"Profile of {label}: 1-row {model_type}, wrk -c{connections}, py-spy {SECONDS} s "
                "(share of samples on the stack)",
                ["part", "share"],
                [[part, f"{share:.0%}"] for part, share in shares.items()],
            )
            show(
                f"Most self time in {label}",
                ["function", "share"],
                [[f, f"{s:.1%}"] for f, s in top],
            )
    return results


if __name__ == "__main__":
    import argparse
    import tempfile

    options = argparse.ArgumentParser(description="the profile section of make bench alone")
    options.add_argument("--model", choices=sorted(MODELS), default="lr")
    options.add_argument("--connections", type=int, default=CONNECTIONS)
    chosen = options.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        profile(Path(scratch), chosen.model, chosen.connections)
