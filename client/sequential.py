"""Train several models one after another with `requests`, each fit lasting over a minute.

    python -m client.sequential [--url URL] [--quick] [--target-seconds 80] [--keep]

Each fit is started as a job (`wait=False`) and followed with a live progress bar. Prints
each model's server-reported and wall time, and saves the figures (for
`python -m client.concurrent` to compare against) in demo_results/sequential.json.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from client import cli
from client.plans import (
    HOLDOUT,
    as_dicts,
    baseline_fit,
    calibrated_plans,
    make_data,
    quick_plans,
    remove_if_present,
    save_results,
    warm_up,
)
from client.report import JobBar, scores_table, table
from client.sync_client import ModelClient

PREFIX = "seq"
MINIMUM_SECONDS = 60.0


def run_sequential(url: str, quick: bool, target_seconds: float, keep: bool) -> dict[str, Any]:
    """Calibrate (unless quick), then fit each plan in turn; returns the figures."""
    with ModelClient(url) as client:
        client.health()
        X, y = make_data(quick)
        print(f"data: {len(X)} rows x {len(X[0])} features, labels {sorted(set(y))}")
        warm_up(client, X, y, PREFIX)
        if quick:
            plans = quick_plans(PREFIX)
        else:
            print(f"calibrating each type on the server for fits of ~{target_seconds:.0f} s:")
            plans = calibrated_plans(client, X, y, PREFIX, target_seconds)

        rows = []
        started = time.perf_counter()
        for plan in plans:
            remove_if_present(client, plan.name)
            began = time.perf_counter()
            job = client.fit(
                plan.name, plan.model_type, X, y, plan.hyperparameters, wait=False, **HOLDOUT
            )
            bar = JobBar(plan.name)
            try:
                answer = client.wait(job, on_progress=bar)
            finally:
                bar.close()
            wall = time.perf_counter() - began
            rows.append(
                {
                    "name": plan.name,
                    "model_type": plan.model_type,
                    "train_seconds": answer["train_seconds"],
                    "wall_seconds": round(wall, 2),
                    "validation": answer["validation"],
                }
            )
            print(f"  {plan.name}: trained in {answer['train_seconds']:.1f} s (wall {wall:.1f} s)")
        total = time.perf_counter() - started
        baseline = baseline_fit(client, X, y, PREFIX)
        if not keep:
            for plan in plans:
                client.remove(plan.name)
    return {
        "quick": quick,
        "plans": as_dicts(plans),
        "fits": rows,
        "baseline": baseline,
        "total_seconds": round(total, 2),
    }


def print_summary(results: dict[str, Any]) -> None:
    rows = [
        [
            fit["name"],
            fit["model_type"],
            fit["train_seconds"],
            fit["wall_seconds"],
            "-" if results["quick"] else "yes" if fit["train_seconds"] >= MINIMUM_SECONDS else "NO",
        ]
        for fit in results["fits"]
    ]
    print("\nSequential training (one fit at a time):")
    print(table(["model", "type", "server s", "wall s", ">= 60 s"], rows))
    print(f"total wall time: {results['total_seconds']:.1f} s")
    print("\nThe five types on the same held-out rows (validation_fraction 0.2, seed 0):")
    print(scores_table([*results["fits"], results["baseline"]]))


def main() -> int:
    options = cli.parser(__doc__.splitlines()[0])
    add_sequential_options(options)
    args = cli.parse(options)
    results = run_sequential(args.url, args.quick, args.target_seconds, args.keep)
    save_results(args.results, results)
    print_summary(results)
    print(f"figures saved in {args.results}")
    return 0


def add_sequential_options(options: argparse.ArgumentParser) -> None:
    options.add_argument(
        "--target-seconds",
        type=float,
        default=80.0,
        help="how long each full fit should take (default 80, a margin over 60)",
    )
    options.add_argument("--keep", action="store_true", help="keep the trained models")
    options.add_argument(
        "--results", type=Path, default=cli.RESULTS, help="where to save the figures"
    )


if __name__ == "__main__":
    cli.run(main)
