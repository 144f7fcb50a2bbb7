"""Sustained load with monitoring in use (issue 45, item 13): does the service wear down?

A real server, a RandomForest served twice (two names), capture on for both at sample rate
1.0. wrk sends 1-row `/predict` at 32 connections for the whole run, in windows of
WINDOW_SECONDS; first to one name with nothing else going on (capture alone), then to the
other beside one client that sends 50-row predictions with their labels (feedback by request
id) five times a second, and asks for the name's report every 2 s, as an open
dashboard does every 5 s. Per window: requests per second, p99, the server's memory (RSS)
and the reports' times. Goal: beside that client, the rate at least 0.9x and p99 at most
1.5x of capture alone, and memory flat.

    python -m bench.sustained [--minutes 10] [--before COMMIT]

With `--before`, the same run against the service at COMMIT (a git worktree), on a store
and monitoring folder of its own, after this one.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import psutil
from sklearn.datasets import make_classification

from bench import wrk
from bench.checkouts import worktree
from bench.harness import show
from devtools.local_server import PROJECT_ROOT, uvicorn_server

WINDOW_SECONDS, CONNECTIONS, REPORT_EVERY = 30, 32, 2.0
CYCLE_SECONDS = 0.2  # the client's pace: a 50-row prediction and its labels, five a second
RESULTS = Path(__file__).parent / "results" / "sustained.json"


def _serve(client: httpx.Client) -> tuple[list[list[float]], list[int]]:
    X, y = make_classification(n_samples=2000, n_features=20, random_state=0)
    hyper = {"n_estimators": 100, "max_depth": 10}
    for name in ("alone", "beside"):
        config = {"name": name, "model_type": "RandomForestClassifier", "hyperparameters": hyper}
        answer = client.post("/fit", json={"X": X.tolist(), "y": y.tolist(), "config": config})
        assert answer.status_code == 201, answer.text
        assert client.post("/load", json={"config": {"name": name}}).status_code == 200
        assert client.put(f"/models/{name}/monitoring", json={"capture": True}).is_success
    return X.tolist(), y.tolist()


class _Client(threading.Thread):
    """50-row predictions with their labels, and a report every REPORT_EVERY seconds."""

    def __init__(self, url: str, X: list[list[float]], y: list[int]) -> None:
        super().__init__(daemon=True)
        self.url, self.X, self.y = url, X, y
        self.stop = threading.Event()
        self.report_seconds: list[tuple[float, float]] = []  # (when, seconds)
        self.failures: list[str] = []

    def run(self) -> None:
        last_report, start = 0.0, 0
        with httpx.Client(base_url=self.url, timeout=120) as client:
            while not self.stop.wait(CYCLE_SECONDS):
                rows = slice(start, start + 50)
                start = (start + 50) % (len(self.X) - 50)
                body = {"X": self.X[rows], "config": {"name": "beside"}}
                answer = client.post("/predict", json=body)
                labels = {"request_id": answer.json().get("request_id"), "y": self.y[rows]}
                given = client.post("/models/beside/feedback", json=labels)
                if not answer.is_success or not given.is_success:
                    self.failures.append(f"{answer.status_code} {given.text[:200]}")
                if time.monotonic() - last_report >= REPORT_EVERY:
                    last_report = time.monotonic()
                    report = client.get("/models/beside/monitoring")
                    took = time.monotonic() - last_report
                    if not report.is_success:
                        self.failures.append(f"report {report.status_code} {report.text[:200]}")
                    self.report_seconds.append((last_report, took))


def _windows(
    url: str, pid: int, name: str, seconds: float, directory: Path, client: _Client | None
) -> list[dict[str, Any]]:
    body = json.dumps({"X": [[0.1] * 20], "config": {"name": name}})
    script = wrk.post_script(directory / f"{name}.lua", body)
    process, found = psutil.Process(pid), []
    if client is not None:
        client.start()
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        started = time.monotonic()
        result = wrk.run(f"{url}/predict", script, CONNECTIONS, WINDOW_SECONDS)
        reports = [] if client is None else [s for at, s in client.report_seconds if at >= started]
        found.append({
            **result, "rss_mb": process.memory_info().rss / 2**20,
            "report_median_s": statistics.median(reports) if reports else None,
            "report_max_s": max(reports) if reports else None,
        })  # fmt: skip
    if client is not None:
        client.stop.set()
        client.join(120)
        if client.failures:  # counted and shown, never averaged in
            print(f"{name}: {len(client.failures)} failed calls, e.g. {client.failures[:3]}")
        found[-1]["client_failures"] = len(client.failures)
    return found


def _design(label: str, checkout: Path, directory: Path, seconds: float) -> dict[str, Any]:
    directory.mkdir(parents=True)
    env = {"MONITORING_PATH": str(directory / "monitoring"), "MAX_INFERENCE_MODELS": "4"}
    server = uvicorn_server(directory / "models", env=env, cwd=checkout)
    with server as (url, process), httpx.Client(base_url=url, timeout=300) as client:
        X, y = _serve(client)
        alone = _windows(url, process.pid, "alone", seconds, directory, None)
        beside = _windows(url, process.pid, "beside", seconds, directory, _Client(url, X, y))
    return {"design": label, "alone": alone, "beside": beside}


def _row(label: str, mode: str, windows: list[dict[str, Any]], alone: dict[str, float]) -> list:
    rates = [w["per_second"] for w in windows]
    tails = [w["p99_ms"] for w in windows]
    reports = [w["report_median_s"] for w in windows if w["report_median_s"] is not None]
    rate, tail = statistics.median(rates), statistics.median(tails)
    return [
        label, mode, f"{rate:,.0f} ({min(rates):,.0f}-{max(rates):,.0f})",
        f"{rate / alone['rate']:.2f}", f"{tail:.1f} (max {max(tails):.1f})",
        f"{tail / alone['p99']:.2f}",
        f"{windows[0]['rss_mb']:.0f} -> {windows[-1]['rss_mb']:.0f}",
        f"{statistics.median(reports):.2f} (max {max(w['report_max_s'] or 0 for w in windows):.2f})"
        if reports else "",
        windows[-1].get("client_failures", ""),
    ]  # fmt: skip


def sustained(minutes: float, before: str | None) -> list[dict[str, Any]]:
    if not wrk.installed():
        print("\nSustained load: skipped, it needs wrk")
        return []
    seconds, results = minutes * 60, []
    with tempfile.TemporaryDirectory() as scratch, ExitStack() as stack:
        root = Path(scratch)
        results.append(_design("now", PROJECT_ROOT, root / "now", seconds))
        if before is not None:
            checkout = stack.enter_context(worktree(before, root))
            assert checkout is not None, f"git cannot check out {before}"
            results.append(_design(f"at {before}", checkout, root / "before", seconds))
    rows = []
    for result in results:
        alone = {
            "rate": statistics.median(w["per_second"] for w in result["alone"]),
            "p99": statistics.median(w["p99_ms"] for w in result["alone"]),
        }
        rows.append(_row(result["design"], "capture alone", result["alone"], alone))
        rows.append(_row(result["design"], "beside feedback and reports", result["beside"], alone))
    show(
        f"Sustained load, {minutes:g} min per mode: 1-row /predict of a RandomForest at "
        f"{CONNECTIONS} connections, capture on, windows of {WINDOW_SECONDS} s (median and "
        "range; goal beside the client: rate >= 0.9x, p99 <= 1.5x of capture alone, RSS flat)",
        ["design", "mode", "req/s", "x alone", "p99 ms", "x alone", "RSS MB first -> last",
         "report s", "client's failed calls"],
        rows,
    )  # fmt: skip
    return results


def main() -> None:
    options = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else "")
    options.add_argument("--minutes", type=float, default=10.0)
    options.add_argument("--before", default=None, help="a commit to run the same against")
    arguments = options.parse_args()
    results = sustained(arguments.minutes, arguments.before)
    RESULTS.write_text(json.dumps(results, indent=1))
    print(f"\nsaved in {RESULTS}")


if __name__ == "__main__":
    main()
