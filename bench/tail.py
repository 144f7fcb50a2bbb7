"""The tail of 1-row LogisticRegression predictions at concurrency 32, measured with wrk.

wrk (Debian's package; `make bench` installs it) is a C load generator: it takes far less
of the 2 cores than a Python one, so the server's own latency shows. Four servers, each run
alternated ROUNDS times:
- estimator served through the batcher (INLINE_PREDICT_MS=0: as a model a little slower
  than the inline line is), with and without GC_FREEZE: where the tail was found;
- the defaults (compiled model, inline), with and without GC_FREEZE.
devtools/tail_probe.py shows the why (every collection's pause, the event loop's lag).
"""

from __future__ import annotations

import json
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from sklearn.datasets import make_classification

from bench import wrk
from bench.harness import show
from devtools.local_server import uvicorn_server

ROUNDS = 3
SECONDS = 5
CONNECTIONS = 32
SERVERS = {
    "estimator, batched, no freeze": {
        "INFERENCE_RUNTIME": "native",
        "INLINE_PREDICT_MS": "0",
        "GC_FREEZE": "false",
    },
    "estimator, batched, GC_FREEZE": {"INFERENCE_RUNTIME": "native", "INLINE_PREDICT_MS": "0"},
    "defaults, no freeze": {"GC_FREEZE": "false"},
    "defaults (compiled, GC_FREEZE)": {},
}


def _wrk(url: str, script: Path, seconds: int) -> dict[str, float]:
    return wrk.run(f"{url}/predict", script, CONNECTIONS, seconds)


def tail() -> dict[str, Any]:
    if not wrk.installed():
        print("\nTail latency: skipped, wrk is not installed (apt-get install wrk)")
        return {"skipped": "wrk is not installed"}
    X, y = make_classification(n_samples=1000, n_features=10, random_state=0)
    fit = {
        "X": X.tolist(),
        "y": y.tolist(),
        "config": {"name": "lr", "model_type": "LogisticRegression"},
    }
    body = {"X": X[:1].tolist(), "config": {"name": "lr"}}
    runs: dict[str, list[dict[str, float]]] = {label: [] for label in SERVERS}
    with tempfile.TemporaryDirectory() as directory:
        script = wrk.post_script(Path(directory) / "predict.lua", json.dumps(body))
        with ExitStack() as stack:
            urls = []
            for i, env in enumerate(SERVERS.values()):
                log = Path(directory) / f"{i}.log"
                environment = {**env, "ACCESS_LOG": "text"}
                url, _ = stack.enter_context(
                    uvicorn_server(Path(directory) / str(i), env=environment, log=log)
                )
                urls.append(url)
                with httpx.Client(base_url=url, timeout=60) as client:
                    assert client.post("/fit", json=fit).status_code == 201
                    assert client.post("/load", json={"config": {"name": "lr"}}).status_code == 200
                _wrk(url, script, 1)  # warm
            for _ in range(ROUNDS):
                for label, url in zip(SERVERS, urls, strict=True):
                    runs[label].append(_wrk(url, script, SECONDS))
    results, rows = {}, []
    for label, done in runs.items():
        p50 = statistics.median(r["p50_ms"] for r in done)
        p99s = [r["p99_ms"] for r in done]
        p99 = statistics.median(p99s)
        per_second = statistics.median(r["per_second"] for r in done)
        results[label] = {
            "p50_ms": p50,
            "p99_ms": p99,
            "p99_range_ms": [min(p99s), max(p99s)],
            "per_second": per_second,
        }
        rows.append(
            [
                label,
                f"{per_second:.0f}",
                f"{p50:.2f}",
                f"{p99:.2f} ({min(p99s):.2f}-{max(p99s):.2f})",
                f"{p99 / p50:.1f}",
            ]
        )
    show(
        f"Tail: 1-row LogisticRegression, wrk -c{CONNECTIONS} for {SECONDS} s, access log on "
        f"(median of {ROUNDS} alternated runs)",
        ["server", "req/s", "p50 ms", "p99 ms (min-max)", "p99 / p50"],
        rows,
    )
    return results
