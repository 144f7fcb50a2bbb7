"""Prediction throughput and latency, and how promptly the server answers while it works."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from typing import Any

import aiohttp
import joblib
import numpy as np
import orjson
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from bench.harness import load, show, timed_post
from devtools.local_server import uvicorn_server

REQUESTS = 1_000
MAX_SECONDS = 6.0
MODELS = {
    "LogisticRegression": ("lr", {}, 1_000, 10),
    "RandomForest (100 trees)": ("rf", {"n_estimators": 100}, 20_000, 20),
}


def predict_body(name: str, rows: np.ndarray) -> bytes:
    return orjson.dumps({"X": rows, "config": {"name": name}}, option=orjson.OPT_SERIALIZE_NUMPY)


async def train_models(session: aiohttp.ClientSession, url: str) -> dict[str, np.ndarray]:
    """Fit and load the two benchmark models; returns rows to predict on, per name."""
    rows = {}
    for name, hyperparameters, n_samples, n_features in MODELS.values():
        X, y = make_classification(n_samples=n_samples, n_features=n_features, random_state=1)
        kind = "RandomForestClassifier" if name == "rf" else "LogisticRegression"
        body = orjson.dumps(
            {
                "X": X,
                "y": y,
                "config": {"name": name, "model_type": kind, "hyperparameters": hyperparameters},
            },
            option=orjson.OPT_SERIALIZE_NUMPY,
        )
        await timed_post(session, f"{url}/fit", body, 201)
        await session.post(f"{url}/load", json={"config": {"name": name}})
        rows[name] = X
    return rows


def in_process_predict(models_dir: Path, name: str, batch: np.ndarray) -> float:
    """The floor: the saved estimator's predict on the same batch, one thread, median of 30."""
    estimator = joblib.load(models_dir / name / "1.joblib")["estimator"]
    with threadpool_limits(1):
        times = []
        for _ in range(30):
            started = time.perf_counter()
            estimator.predict(batch)
            times.append(time.perf_counter() - started)
    return float(np.median(times))


async def throughput(
    session: aiohttp.ClientSession, url: str, models_dir: Path, rows: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    table_rows, results = [], []
    for model_type, (name, *_rest) in MODELS.items():
        for batch in (1, 100):
            starts = [(i * batch) % (len(rows[name]) - batch) for i in range(50)]
            bodies = [predict_body(name, rows[name][s : s + batch]) for s in starts]
            floor = in_process_predict(models_dir, name, rows[name][:batch])
            for concurrency in (1, 8, 32):
                counter = iter(range(10**9))

                async def send(bodies: list[bytes] = bodies, counter: Any = counter) -> float:
                    body = bodies[next(counter) % len(bodies)]
                    return await timed_post(session, f"{url}/predict", body, 200)

                result = await load(send, concurrency, REQUESTS, MAX_SECONDS)
                table_rows.append(
                    [
                        model_type,
                        batch,
                        concurrency,
                        f"{result.per_second:.0f}",
                        f"{result.p(50) * 1e3:.2f}",
                        f"{result.p(99) * 1e3:.2f}",
                        f"{floor * 1e3:.3f}",
                        f"{result.p(50) / floor:.1f}",
                    ]
                )
                results.append(
                    {
                        "model": model_type,
                        "rows": batch,
                        "concurrency": concurrency,
                        "per_second": result.per_second,
                        "p50_ms": result.p(50) * 1e3,
                        "p99_ms": result.p(99) * 1e3,
                        "floor_ms": floor * 1e3,
                    }
                )
    show(
        "Predictions: requests/s and latency (ms) against the in-process predict of the same batch",
        ["model", "rows", "concurrency", "req/s", "p50", "p99", "floor", "p50 / floor"],
        table_rows,
    )
    return results


ROUNDS = 3


async def inline_baseline(
    session: aiohttp.ClientSession, url: str, models_dir: Path, rows: dict[str, np.ndarray]
) -> list[dict[str, Any]]:
    """The model server against a plain FastAPI handler calling model.predict inline, on the
    same model file and the same 1-row requests: alternated, ROUNDS times each, medians."""
    results, table_rows = [], []
    for name, label, concurrency in (
        ("lr", "LogisticRegression", 8),
        ("rf", "RandomForest (100 trees)", 32),
    ):
        bodies = [predict_body(name, rows[name][i : i + 1]) for i in range(50)]
        env = {"BENCH_MODEL_FILE": str(models_dir / name / "1.joblib")}
        with uvicorn_server(models_dir, app="bench.inline_app:app", env=env) as (inline_url, _):
            runs: dict[str, list[Any]] = {"server": [], "inline": []}
            for _ in range(ROUNDS):
                for kind, base in (("server", url), ("inline", inline_url)):
                    counter = iter(range(10**9))

                    async def send(
                        base: str = base, counter: Any = counter, bodies: list[bytes] = bodies
                    ) -> float:
                        body = bodies[next(counter) % len(bodies)]
                        return await timed_post(session, f"{base}/predict", body, 200)

                    runs[kind].append(await load(send, concurrency, REQUESTS, MAX_SECONDS))
        medians = {
            kind: (
                statistics.median(r.per_second for r in results_),
                statistics.median(r.p(99) for r in results_) * 1e3,
            )
            for kind, results_ in runs.items()
        }
        (ours, our_p99), (inline, inline_p99) = medians["server"], medians["inline"]
        table_rows.append(
            [
                label,
                concurrency,
                f"{ours:.0f}",
                f"{inline:.0f}",
                f"{ours / inline:.2f}",
                f"{our_p99:.2f}",
                f"{inline_p99:.2f}",
            ]
        )
        results.append(
            {
                "model": label,
                "concurrency": concurrency,
                "server_per_second": ours,
                "inline_per_second": inline,
                "ratio": ours / inline,
                "server_p99_ms": our_p99,
                "inline_p99_ms": inline_p99,
            }
        )
    show(
        f"1-row predictions: this server against a plain inline handler (median of {ROUNDS} alternated runs)",
        [
            "model",
            "concurrency",
            "server req/s",
            "inline req/s",
            "ratio",
            "server p99 ms",
            "inline p99 ms",
        ],
        table_rows,
    )
    return results


async def probe_latencies(
    session: aiohttp.ClientSession, url: str, seconds: float
) -> dict[str, float]:
    """/health and a 1-row LogisticRegression predict, one after another, paced at ~100/s."""
    one_row = predict_body("lr", np.zeros((1, 10)))
    health, predict = [], []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.perf_counter()
        async with session.get(f"{url}/health") as reply:
            await reply.read()
        health.append(time.perf_counter() - started)
        predict.append(await timed_post(session, f"{url}/predict", one_row, 200))
        await asyncio.sleep(0.01)  # pacing, not synchronisation
    return {
        "health_p99_ms": float(np.percentile(health, 99)) * 1e3,
        "predict_p99_ms": float(np.percentile(predict, 99)) * 1e3,
    }


async def responsiveness(
    session: aiohttp.ClientSession, url: str, slots: int, rows: dict[str, np.ndarray]
) -> dict[str, Any]:
    """Idle; while a 100k-row prediction runs; while every slot trains. (Leaves the fits
    running: the caller stops the server after this.)"""
    idle = await probe_latencies(session, url, 4)

    big = predict_body("rf", np.tile(rows["rf"][:1000], (100, 1)))
    stop = asyncio.Event()

    async def big_predictions() -> None:
        while not stop.is_set():
            await timed_post(session, f"{url}/predict", big, 200)

    runner = asyncio.create_task(big_predictions())
    during_predict = await probe_latencies(session, url, 4)
    stop.set()
    await runner

    X, y = make_classification(n_samples=2_000, n_features=20, random_state=2)
    fits = [
        asyncio.create_task(
            session.post(
                f"{url}/fit",
                data=orjson.dumps(
                    {
                        "X": X,
                        "y": y,
                        "config": {
                            "name": f"busy-{i}",
                            "model_type": "RandomForestClassifier",
                            "hyperparameters": {"n_estimators": 20_000},
                        },
                    },
                    option=orjson.OPT_SERIALIZE_NUMPY,
                ),
                headers={"content-type": "application/json"},
            )
        )
        for i in range(slots)
    ]
    deadline = time.monotonic() + 60
    while (await (await session.get(f"{url}/status")).json())["training"]["active"] < slots:
        assert time.monotonic() < deadline, "the busy fits did not start"
        await asyncio.sleep(0.05)
    during_training = await probe_latencies(session, url, 4)
    for fit in fits:
        fit.cancel()

    table_rows = [
        [
            state,
            f"{values['health_p99_ms']:.2f}",
            f"{values['health_p99_ms'] / idle['health_p99_ms']:.2f}",
            f"{values['predict_p99_ms']:.2f}",
            f"{values['predict_p99_ms'] / idle['predict_p99_ms']:.2f}",
        ]
        for state, values in (
            ("idle", idle),
            ("100k-row predict running", during_predict),
            (f"all {slots} slots training", during_training),
        )
    ]
    show(
        "Responsiveness: p99 latency (ms) of /health and a 1-row predict, against idle",
        ["while", "/health p99", "x idle", "1-row predict p99", "x idle"],
        table_rows,
    )
    return {"idle": idle, "during_predict": during_predict, "during_training": during_training}
