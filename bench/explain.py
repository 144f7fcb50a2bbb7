"""Explanations (issue 29): what an explanation costs against the prediction it explains, per
type, for 1 row and 1000 rows, in the same run on the same server; the first explanation
(which starts the explanation process); and /predict's 1-row p99 while a 1000-row
RandomForest explanation runs, against idle.

Sequential requests over one connection (httpx): a figure is the median of ROUNDS requests
with its range. The goals (issue 29): trees at most 10x their prediction per row, and the
p99 within 2x idle.
"""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from sklearn.datasets import make_classification

from bench.harness import Spread, show
from client.report import percentile
from devtools.local_server import uvicorn_server

ROUNDS = 7
MODELS = {  # type: hyperparameters, as the ceiling section trains them
    "LogisticRegression": {},
    "RandomForestClassifier": {"n_estimators": 100},
    "XGBClassifier": {"n_estimators": 300},
    "LGBMClassifier": {"n_estimators": 300},
    "CatBoostClassifier": {"n_estimators": 300},
}
ROWS, FEATURES = 5000, 20
PROBE_SECONDS = 0.002  # between two /predict of the p99 probe: a steady trickle


def _timed(client: httpx.Client, path: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    answer = client.post(path, json=body)
    elapsed = time.perf_counter() - started
    assert answer.status_code == 200, answer.text
    return elapsed


def _spread(client: httpx.Client, path: str, body: dict[str, Any]) -> Spread:
    return Spread.of([_timed(client, path, body) for _ in range(ROUNDS)])


def _probe(url: str, body: dict[str, Any], stop: threading.Event) -> list[float]:
    """1-row /predict latencies, one after another, until `stop`."""
    found = []
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.is_set():
            found.append(_timed(client, "/predict", body))
            time.sleep(PROBE_SECONDS)
    return found


def _p99_beside(url: str, body: dict[str, Any], explain: dict[str, Any] | None) -> dict[str, Any]:
    stop, latencies = threading.Event(), []
    prober = threading.Thread(target=lambda: latencies.extend(_probe(url, body, stop)))
    prober.start()
    with httpx.Client(base_url=url, timeout=600) as client:
        if explain is None:
            time.sleep(5.0)  # idle: the same kind of trickle, for as long
            seconds = 5.0
        else:
            seconds = _timed(client, "/explain", explain)
    stop.set()
    prober.join()
    return {
        "p99_ms": percentile(latencies, 99) * 1e3,
        "requests": len(latencies),
        "seconds": seconds,
    }


def explain_cost(directory: Path) -> dict[str, Any]:
    X, y = make_classification(ROWS, FEATURES, n_informative=10, random_state=0)
    env = {"MAX_INFERENCE_MODELS": "5"}
    results: dict[str, Any] = {"cells": {}}
    with (
        uvicorn_server(directory / "models", training_cores=3, env=env) as (url, _),
        httpx.Client(base_url=url, timeout=600) as client,
    ):
        for model_type, hyperparameters in MODELS.items():
            config = {"name": model_type, "model_type": model_type}
            config["hyperparameters"] = hyperparameters
            fitted = client.post("/fit", json={"X": X.tolist(), "y": y.tolist(), "config": config})
            assert fitted.status_code == 201, fitted.text
            assert client.post("/load", json={"config": {"name": model_type}}).status_code == 200
        one = {"X": X[:1].tolist(), "config": {"name": "LogisticRegression"}}
        results["first_explanation_s"] = _timed(client, "/explain", one)
        rows = []
        for model_type in MODELS:
            cell: dict[str, Any] = {}
            for count in (1, 1000):
                body = {"X": X[:count].tolist(), "config": {"name": model_type}}
                explained = _spread(client, "/explain", body)
                predicted = _spread(client, "/predict", body)
                cell[count] = {
                    "explain_ms": explained.median * 1e3,
                    "explain_range_ms": [explained.low * 1e3, explained.high * 1e3],
                    "predict_ms": predicted.median * 1e3,
                    "ratio": explained.median / predicted.median,
                }
                rows.append(
                    [
                        model_type,
                        count,
                        explained.ms(),
                        predicted.ms(),
                        f"{cell[count]['ratio']:.1f}x",
                    ]
                )
            results["cells"][model_type] = cell
        show(
            f"Explanations: /explain against /predict of the same rows, ms (median of {ROUNDS}, "
            f"range); first explanation (starts the process): {results['first_explanation_s']:.2f} s",
            ["type", "rows", "explain ms", "predict ms", "explain / predict"],
            rows,
        )
        probe = {"X": X[:1].tolist(), "config": {"name": "LogisticRegression"}}
        forest = {"X": X[:1000].tolist(), "config": {"name": "RandomForestClassifier"}}
        idle = [_p99_beside(url, probe, None) for _ in range(3)]
        busy = [_p99_beside(url, probe, forest) for _ in range(3)]
        results["p99"] = {"idle": idle, "explaining": busy}
        idle_p99 = statistics.median(run["p99_ms"] for run in idle)
        busy_p99 = statistics.median(run["p99_ms"] for run in busy)
        results["p99_ratio"] = busy_p99 / idle_p99
        show(
            "/predict 1-row p99 (LogisticRegression), a request every 2 ms, idle and while a "
            "1000-row RandomForest explanation runs (median of 3 runs, range)",
            ["", "p99 ms", "requests per run", "run seconds"],
            [
                [
                    label,
                    f"{statistics.median(r['p99_ms'] for r in runs):.2f} "
                    f"({min(r['p99_ms'] for r in runs):.2f}-{max(r['p99_ms'] for r in runs):.2f})",
                    f"{statistics.median(r['requests'] for r in runs):.0f}",
                    f"{statistics.median(r['seconds'] for r in runs):.1f}",
                ]
                for label, runs in (("idle", idle), ("explaining", busy))
            ]
            + [["ratio", f"{results['p99_ratio']:.2f}x", "", ""]],
        )
    return results


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        explain_cost(Path(scratch))
