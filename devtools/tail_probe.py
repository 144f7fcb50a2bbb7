"""Where a prediction's tail latency comes from: one server in this process, wrk outside.

    python -m devtools.tail_probe [--connections 32] [--seconds 10] [--gc-freeze off|on]
                                  [--access-log text|json|off] [--runtime auto|native]

Starts the app with uvicorn in this process (so that the garbage collector and the event
loop can be watched from inside), trains and loads a 1-row LogisticRegression, and runs
`wrk` (Debian's package) against /predict. It prints wrk's latency percentiles next to:
- every garbage collection during the run: count and pause per generation;
- the event loop's lag: how late a 1 ms timer fires, sampled all along;
- how much CPU the server and wrk each took (they share the machine's cores).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import psutil
import uvicorn
from sklearn.datasets import make_classification

from devtools.local_server import free_port
from server.config import Settings
from server.main import create_app

ROW = [0.1, -1.2, 0.3, 0.4, 1.5, -0.6, 0.7, 0.8, -0.9, 1.0]
LUA = f"""
wrk.method = "POST"
wrk.body = '{json.dumps({"X": [ROW], "config": {"name": "lr"}})}'
wrk.headers["Content-Type"] = "application/json"
"""


class GcWatch:
    """Pause of every collection, by generation (gc.callbacks, called around each one)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[float]] = {0: [], 1: [], 2: []}
        self._started = 0.0
        self.recording = False

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
        elif self.recording:
            self.pauses[info["generation"]].append(time.perf_counter() - self._started)


async def loop_lag(samples: list[float], stop: threading.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        samples.append(time.perf_counter() - started - 0.001)


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    options.add_argument("--connections", type=int, default=32)
    options.add_argument("--seconds", type=int, default=10)
    options.add_argument("--gc-freeze", choices=["on", "off"], default="on")
    options.add_argument("--access-log", choices=["text", "json", "off"], default="text")
    options.add_argument("--runtime", choices=["auto", "native"], default="auto")
    args = options.parse_args()

    watch = GcWatch()
    gc.callbacks.append(watch)
    port = free_port()
    with tempfile.TemporaryDirectory() as directory:
        overrides: dict[str, Any] = {
            "models_path": Path(directory),
            "training_cores": 2,
            "access_log": args.access_log,
            "inference_runtime": args.runtime,
            "gc_freeze": args.gc_freeze == "on",
        }
        settings = Settings(**overrides)
        app = create_app(settings)
        server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning"))
        lag: list[float] = []
        stop = threading.Event()

        def serve() -> None:
            async def both() -> None:
                lag_task = asyncio.create_task(loop_lag(lag, stop))
                await server.serve()
                await lag_task

            asyncio.run(both())

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{port}"
        while not server.started:
            time.sleep(0.05)
        X, y = make_classification(n_samples=1000, n_features=10, random_state=0)
        config = {"name": "lr", "model_type": "LogisticRegression"}
        with httpx.Client(base_url=url, timeout=60) as client:
            client.post("/fit", json={"X": X.tolist(), "y": y.tolist(), "config": config})
            client.post("/load", json={"config": {"name": "lr"}})
        model = app.state.service.registry.get(("lr", 1)).model
        inline = model.estimated_seconds(1) <= settings.inline_predict_ms / 1000
        print(
            f"1-row predict estimated at {model.estimated_seconds(1) * 1e6:.0f} us: "
            f"{'inline' if inline else 'in a thread'} ({model.choice.runtime.name})"
        )
        script = Path(directory) / "post.lua"
        script.write_text(LUA)
        command = [
            "wrk",
            "-t1",
            f"-c{args.connections}",
            f"-d{args.seconds}s",
            "--latency",
            "-s",
            str(script),
            f"{url}/predict",
        ]
        subprocess.run([*command[:3], "-d2s", *command[4:]], capture_output=True)  # warm
        lag.clear()
        me = psutil.Process()
        cpu_before = me.cpu_times()
        print(f"objects out of the collector's sight (gc.freeze): {gc.get_freeze_count()}")
        watch.recording = True
        wrk = subprocess.run(command, capture_output=True, text=True)
        watch.recording = False
        cpu_after = me.cpu_times()
        stop.set()
        server.should_exit = True
        thread.join(10)

    print(wrk.stdout)
    server_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    print(f"server CPU: {server_cpu:.1f} s of {args.seconds} s ({os.cpu_count()} cores)")
    report = {}
    for generation, pauses in watch.pauses.items():
        if pauses:
            report[f"gen{generation}"] = {
                "collections": len(pauses),
                "median_ms": round(statistics.median(pauses) * 1e3, 3),
                "max_ms": round(max(pauses) * 1e3, 3),
                "total_ms": round(sum(pauses) * 1e3, 1),
            }
    lag_ms = sorted(value * 1e3 for value in lag)
    report["loop_lag_ms"] = {
        "samples": len(lag_ms),
        "p50": round(lag_ms[len(lag_ms) // 2], 3),
        "p99": round(lag_ms[int(len(lag_ms) * 0.99)], 3),
        "max": round(lag_ms[-1], 3),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
