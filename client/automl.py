"""Search for the best model on every free slot: `python -m client.automl`.

Starts an AutoML search (`POST /automl`) on the demos' table, shows its progress and its
leaderboard live as candidates finish, then prints the wall time against the sum of the
candidates' training times (the parallel speed-up: trainings run one per slot at once) and
the winner's scores. Exit status 1 if the search did not succeed.
"""

from __future__ import annotations

import time
from typing import Any

from tqdm import tqdm

from client import cli
from client.plans import make_data
from client.report import table
from client.sync_client import ModelClient

NAME = "automl-demo"
POLL_SECONDS = 0.5


def leaderboard(search: dict[str, Any], rows: int = 10) -> str:
    metric = search["metric"]
    return table(
        ["rank", "#", "type", metric, "accuracy", "train s", "predict us/row", "runtime"],
        [
            [
                row["rank"],
                row["candidate"],
                row["model_type"],
                round(row["scores"][metric], 4),
                round(row["scores"]["accuracy"], 4),
                row["train_seconds"],
                row["predict_us_per_row"],
                row["runtime"],
            ]
            for row in search["leaderboard"][:rows]
        ],
    )


def follow(client: ModelClient, search_id: str) -> dict[str, Any]:
    """Poll the search until it ends, with a progress bar and the board at each change."""
    search: dict[str, Any] = client.automl_search(search_id)
    shown = 0
    with tqdm(total=search["progress"]["planned"], unit="model", desc="candidates") as bar:
        while True:
            search = client.automl_search(search_id)
            progress = search["progress"]
            bar.total = max(progress["planned"], progress["finished"])
            bar.n = progress["finished"]
            best = search["leaderboard"][0] if search["leaderboard"] else None
            if best is not None:
                bar.set_postfix_str(
                    f"best {best['model_type']} {best['scores'][search['metric']]:.4f}"
                )
            bar.refresh()
            if progress["finished"] != shown and search["leaderboard"]:
                shown = progress["finished"]
                bar.write(f"\nleaderboard after {shown} candidate(s):\n{leaderboard(search, 5)}")
            if search["state"] != "running":
                return search
            time.sleep(POLL_SECONDS)


def main() -> int:
    options = cli.parser(__doc__.splitlines()[0])
    options.add_argument("--max-models", type=int, default=None, help="default: 12 (6 --quick)")
    options.add_argument("--max-runtime-secs", type=float, default=None)
    args = cli.parse(options)
    max_models = args.max_models or (6 if args.quick else 12)
    X, y = make_data(args.quick)
    with ModelClient(args.url) as client:
        if NAME in [m["name"] for m in client.models()["models"]]:
            client.remove(NAME)
        slots = client.status()["training"]["slots"]
        print(f"searching {max_models} candidates for {len(X)} rows on {slots} slot(s)")
        started = client.automl(NAME, X, y, max_models, args.max_runtime_secs)
        search = follow(client, started["id"])
    print(f"\nsearch {search['state']}: {search['progress']['finished']} candidate(s)")
    print(leaderboard(search))
    if search["state"] != "succeeded":
        print(f"no model saved: {search['error']}")
        return 1
    wall, summed = search["elapsed_seconds"], search["training_seconds"]
    print(
        f"\nwall time {wall:.1f} s against {summed:.1f} s of training summed over the "
        f"candidates: {summed / wall:.2f}x on {slots} slot(s) (ideal {slots}x, less the "
        "compiling, checking and scheduling around each fit)"
    )
    model = search["model"]
    scores = ", ".join(
        f"{k} {v:.4f}" for k, v in model["validation"]["scores"].items() if v is not None
    )
    print(f"saved '{model['name']}' version {model['version']}: {model['model_type']}, {scores}")
    return 0


if __name__ == "__main__":
    cli.run(main)
