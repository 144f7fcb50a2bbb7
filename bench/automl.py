"""AutoML: one search of 12 candidates with one training slot and with all of them (a
server each: TRAINING_CORES=2 and =3 on this machine), on the same table and seed, so
the same candidates train.

- wall time, and the speed-up against the ideal: the candidates' training seconds summed
  divided by the slots (what perfect packing would take, with nothing around each fit);
- the scheduling overhead: for each candidate after the first on a slot, the time from the
  end of one candidate's job to the start of the next (the server's own job timestamps).
"""

from __future__ import annotations

import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sklearn.datasets import make_classification

from bench.harness import show
from devtools.local_server import uvicorn_server

CANDIDATES = 12
SEED = 0


def _search(url: str, X: list[list[float]], y: list[int]) -> dict[str, Any]:
    with httpx.Client(base_url=url, timeout=600) as client:
        config = {"name": "bench", "max_models": CANDIDATES, "seed": SEED}
        started = client.post("/automl", json={"X": X, "y": y, "config": config})
        assert started.status_code == 202, started.text
        while True:
            search: dict[str, Any] = client.get(started.headers["location"]).json()
            if search["state"] != "running":
                break
            time.sleep(0.2)  # a bench's poll, not a synchronisation
        assert search["state"] == "succeeded", search["error"]
        jobs = {job["id"]: job for job in client.get("/jobs").json()["jobs"]}
        slots = client.get("/status").json()["training"]["slots"]
    candidates = [jobs[c["job_id"]] for c in search["candidates"]]
    return {"search": search, "jobs": candidates, "slots": slots}


def _gaps(jobs: list[dict[str, Any]], slots: int) -> list[float]:
    """From each job's end to the start of the next job that began after it, per freed slot:
    how long a freed slot stayed empty."""
    spans = sorted(
        (datetime.fromisoformat(j["started_at"]), datetime.fromisoformat(j["finished_at"]))
        for j in jobs
    )
    gaps = []
    for index in range(slots, len(spans)):
        freed = sorted(end for _, end in spans[:index])[index - slots]
        gaps.append(max(0.0, (spans[index][0] - freed).total_seconds()))
    return gaps


def search_speedup(directory: Path) -> dict[str, Any]:
    X, y = make_classification(n_samples=5000, n_features=20, random_state=SEED)
    rows, labels = X.tolist(), y.tolist()
    results: dict[str, Any] = {}
    table = []
    # One slot; two pinned off the server's core (on 2 cores they share the one left); two
    # unpinned, which may use both cores (the server is nearly idle during a search).
    setups = {
        "1 slot": (2, "true"),
        "2 slots, 1 core": (3, "true"),
        "2 slots, 2 cores": (3, "false"),
    }
    for label, (cores, pin) in setups.items():
        env = {"PIN_TRAINING_CORES": pin}
        models = directory / f"models-{len(results)}"
        with uvicorn_server(models, training_cores=cores, env=env) as (url, _):
            run = _search(url, rows, labels)
        search, slots = run["search"], run["slots"]
        wall, summed = search["elapsed_seconds"], search["training_seconds"]
        gaps = _gaps(run["jobs"], slots)
        results[label] = {"wall": wall, "training_summed": summed, "gaps": gaps}
        table.append(
            [
                label,
                f"{wall:.1f}",
                f"{summed:.1f}",
                f"{summed / slots:.1f}",
                f"{summed / wall:.2f}x (ideal {slots}x)",
                f"{statistics.median(gaps) * 1e3:.0f} ({min(gaps) * 1e3:.0f}-{max(gaps) * 1e3:.0f})",
            ]
        )
    one = results["1 slot"]["wall"]
    speedups = ", ".join(f"{k} {one / v['wall']:.2f}x" for k, v in results.items() if k != "1 slot")
    show(
        f"AutoML: a search of {CANDIDATES} candidates (5000 x 20, seed {SEED}), one slot "
        f"against all; wall-time speed-up over one slot: {speedups}",
        [
            "setup",
            "wall s",
            "training s summed",
            "ideal wall s",
            "training / wall",
            "slot idle between candidates ms (median, range)",
        ],
        table,
    )
    return results


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as temporary:
        search_speedup(Path(temporary))
