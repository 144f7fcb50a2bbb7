"""Compiled inference: the same models served by ONNX Runtime and by their estimators.

Two servers on one model directory: the default (INFERENCE_RUNTIME=auto: compiled models)
and one with INFERENCE_RUNTIME=native, their runs alternated cell by cell, ROUNDS times,
medians. Next to them, the in-process floors of the same batch: the estimator's predict and
ONNX Runtime called directly. Then what a loaded model costs in memory on each runtime, and
what compiling costs where it happens (in the training process, after the fit).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from bench.harness import LoadResult, load, show, timed_post
from devtools.local_server import PROJECT_ROOT, key_file_of, uvicorn_server
from devtools.saved import saved_bundle
from server.algorithms import resolve
from server.inference.compiled.choice import checked
from server.inference.compiled.runtimes import NativeRuntime, OnnxRuntime

ROUNDS = 3
REQUESTS = 600
MAX_SECONDS = 3.0
JSON = {"content-type": "application/json"}
MODELS = {
    "RandomForest (100 trees)": ("crf", "RandomForestClassifier", {"n_estimators": 100}),
    "XGBoost (300 rounds)": ("cxgb", "XGBClassifier", {"n_estimators": 300}),
    "LogisticRegression": ("clr", "LogisticRegression", {}),
}


def _body(name: str, rows: np.ndarray) -> bytes:
    return orjson.dumps({"X": rows, "config": {"name": name}}, option=orjson.OPT_SERIALIZE_NUMPY)


async def _train(session: aiohttp.ClientSession, url: str, X: np.ndarray, y: np.ndarray) -> dict:
    metadata = {}
    for name, model_type, hyperparameters in MODELS.values():
        config = {"name": name, "model_type": model_type, "hyperparameters": hyperparameters}
        body = orjson.dumps({"X": X, "y": y, "config": config}, option=orjson.OPT_SERIALIZE_NUMPY)
        async with session.post(f"{url}/fit", data=body, headers=JSON) as reply:
            metadata[name] = await reply.json()
            assert reply.status == 201, (name, reply.status, metadata[name])
    return metadata


async def _load_seconds(session: aiohttp.ClientSession, url: str, name: str) -> float:
    started = time.perf_counter()
    async with session.post(f"{url}/load", json={"config": {"name": name}}) as reply:
        await reply.read()
    return time.perf_counter() - started


def _check_seconds(bundle: dict[str, Any]) -> float | None:
    """The check that /load runs (training rows and rows at the split values), in-process,
    median of 3."""
    if bundle["onnx"] is None:
        return None
    algorithm = resolve(bundle["model_type"])
    native = NativeRuntime(bundle["estimator"], algorithm.predict_kwargs, algorithm)
    samples = []
    with threadpool_limits(1):
        for _ in range(3):
            started = time.perf_counter()
            checked(native, bundle["onnx"], bundle["check_rows"], algorithm)
            samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _floor(predict: Any, batch: np.ndarray, times: int) -> float:
    with threadpool_limits(1):
        predict(batch)  # warm
        samples = []
        for _ in range(times):
            started = time.perf_counter()
            predict(batch)
            samples.append(time.perf_counter() - started)
    return float(np.median(samples))


RSS_SCRIPT = """
import gc, sys, psutil
from pathlib import Path
from server.algorithms import preload
from server.inference.loaded import read_model
from server.inference.memory import release_unused_memory
from server.store.files import ModelStore
from server.store.keys import read_key_file
import onnxruntime

preload()
gc.collect()
before = psutil.Process().memory_info().rss
store = ModelStore(Path(sys.argv[1]), read_key_file(Path(sys.argv[4])))
model = read_model(store, sys.argv[2], 1, sys.argv[3], "eager")
gc.collect()
release_unused_memory()
print((psutil.Process().memory_info().rss - before) / 1e6)
"""


def _rss_of_loaded(models_dir: Path, name: str, runtime: str) -> float:
    """MB of resident memory that loading one model adds to a fresh process (the libraries
    imported first), on the given runtime."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            RSS_SCRIPT,
            str(models_dir),
            name,
            runtime,
            str(key_file_of(models_dir)),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    return float(done.stdout.strip().splitlines()[-1])


async def compiled_serving(session: aiohttp.ClientSession, url: str, models_dir: Path) -> dict:
    X, y = make_classification(n_samples=20_000, n_features=20, random_state=1)
    metadata = await _train(session, url, X, y)
    results: dict[str, Any] = {"cells": [], "models": {}}
    env = {"INFERENCE_RUNTIME": "native", "MAX_INFERENCE_MODELS": "10"}
    with uvicorn_server(models_dir, env=env) as (native_url, _):
        urls = {"onnx": url, "native": native_url}
        for label, (name, _type, _h) in MODELS.items():
            loads = {kind: await _load_seconds(session, base, name) for kind, base in urls.items()}
            async with session.get(f"{url}/models/{name}") as reply:
                info = await reply.json()
            bundle = saved_bundle(models_dir, name)
            compiled = OnnxRuntime(bundle["onnx"]) if bundle["onnx"] is not None else None
            results["models"][label] = {
                "runtime": info["runtime"],
                "runtime_detail": info["runtime_detail"],
                "train_seconds": metadata[name]["train_seconds"],
                "compile_seconds": metadata[name]["compiled"]["seconds"],
                "onnx_bytes": metadata[name]["compiled"].get("bytes"),
                "model_bytes": metadata[name]["size_bytes"],
                "load_seconds": loads,
                "check_seconds": _check_seconds(bundle),
                "rss_mb": {
                    kind: _rss_of_loaded(models_dir, name, kind) for kind in ("auto", "native")
                },
            }
            for batch in (1, 100):
                bodies = [_body(name, X[i * batch : (i + 1) * batch]) for i in range(50)]
                floors = {
                    "native": _floor(bundle["estimator"].predict, X[:batch], 30),
                    "onnx": _floor(compiled.indices, X[:batch], 300) if compiled else None,
                }
                for concurrency in (1, 8, 32):
                    runs: dict[str, list[LoadResult]] = {"onnx": [], "native": []}
                    for _ in range(ROUNDS):
                        for kind, base in urls.items():
                            counter = iter(range(10**9))

                            async def send(
                                base: str = base, counter: Any = counter, bodies: Any = bodies
                            ) -> float:
                                body = bodies[next(counter) % len(bodies)]
                                return await timed_post(session, f"{base}/predict", body, 200)

                            runs[kind].append(await load(send, concurrency, REQUESTS, MAX_SECONDS))
                    cell = {"model": label, "rows": batch, "concurrency": concurrency}
                    for kind, done in runs.items():
                        per_second = [r.per_second for r in done]
                        cell[kind] = {
                            "per_second": statistics.median(per_second),
                            "per_second_range": [min(per_second), max(per_second)],
                            "p50_ms": statistics.median(r.p(50) for r in done) * 1e3,
                            "p99_ms": statistics.median(r.p(99) for r in done) * 1e3,
                        }
                    cell["floor_ms"] = {k: (v * 1e3 if v else None) for k, v in floors.items()}
                    results["cells"].append(cell)
    _report(results)
    return results


def _report(results: dict[str, Any]) -> None:
    rows = []
    for cell in results["cells"]:
        onnx, native = cell["onnx"], cell["native"]
        floor = cell["floor_ms"]
        rows.append(
            [
                cell["model"],
                cell["rows"],
                cell["concurrency"],
                f"{onnx['per_second']:.0f} ({onnx['per_second_range'][0]:.0f}-{onnx['per_second_range'][1]:.0f})",
                f"{native['per_second']:.0f} ({native['per_second_range'][0]:.0f}-{native['per_second_range'][1]:.0f})",
                f"{onnx['per_second'] / native['per_second']:.1f}",
                f"{onnx['p50_ms']:.2f} / {onnx['p99_ms']:.2f}",
                f"{native['p50_ms']:.2f} / {native['p99_ms']:.2f}",
                "-" if floor["onnx"] is None else f"{floor['onnx']:.3f}",
                f"{floor['native']:.3f}",
            ]
        )
    show(
        f"Compiled (ONNX Runtime) against native serving: req/s median (min-max) of {ROUNDS} "
        "alternated runs; latency ms; floors = in-process predict of the same batch (ms)",
        [
            "model",
            "rows",
            "conc.",
            "onnx req/s",
            "native req/s",
            "onnx / native",
            "onnx p50 / p99",
            "native p50 / p99",
            "floor onnx",
            "floor native",
        ],
        rows,
    )
    lr_p50 = next(
        c["onnx"]["p50_ms"]
        for c in results["cells"]
        if c["model"] == "LogisticRegression" and c["rows"] == 1 and c["concurrency"] == 1
    )
    rf = next(
        c
        for c in results["cells"]
        if c["model"].startswith("RandomForest") and c["rows"] == 1 and c["concurrency"] == 1
    )
    print(
        f"1-row RandomForest at concurrency 1: {rf['onnx']['per_second'] / rf['native']['per_second']:.1f}x "
        f"the native req/s; p50 {rf['onnx']['p50_ms']:.3f} ms against LogisticRegression's "
        f"{lr_p50:.3f} ms (+{rf['onnx']['p50_ms'] - lr_p50:.3f} ms)"
    )
    show(
        "What compiling costs and saves, per model",
        [
            "model",
            "runtime",
            "fit s",
            "compile s (in the fit's process)",
            "file MB (with ONNX)",
            "ONNX MB",
            "/load s onnx / native",
            "of which the check s",
            "loaded MB onnx / native",
        ],
        [
            [
                label,
                m["runtime"],
                f"{m['train_seconds']:.2f}",
                f"{m['compile_seconds']:.2f}",
                f"{m['model_bytes'] / 1e6:.1f}",
                "-" if m["onnx_bytes"] is None else f"{m['onnx_bytes'] / 1e6:.1f}",
                f"{m['load_seconds']['onnx']:.3f} / {m['load_seconds']['native']:.3f}",
                "-" if m["check_seconds"] is None else f"{m['check_seconds']:.3f}",
                f"{m['rss_mb']['auto']:.1f} / {m['rss_mb']['native']:.1f}",
            ]
            for label, m in results["models"].items()
        ],
    )
    for label, m in results["models"].items():
        print(f"{label}: {m['runtime']}, {m['runtime_detail']}")
