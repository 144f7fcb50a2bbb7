"""Launch the sequential demo's trainings at once with aiohttp, then many predictions at once.

    python -m client.concurrent [--url URL] [--quick] [--compare]
                                [--requests 400] [--concurrency 32]

With --compare, the sequential demo runs first in the same invocation; without it, its
figures are read from demo_results/sequential.json. Every fit is started as a job
(`wait=false`) and shown with its own live progress bar. The speed-up is bounded by the
training slots (TRAINING_CORES - 1) and by the machine's cores: a fit the server cannot
place answers 503, and this script starts it again after the Retry-After the server sent.
"""

from __future__ import annotations

import asyncio
import sys
import time
from typing import Any

from client import cli
from client.async_client import AsyncModelClient
from client.calls import ApiError
from client.plans import HOLDOUT, TrainingPlan, make_data, plans_from, read_results, warm_up
from client.report import JobBar, percentile, scores_table, table
from client.sequential import add_sequential_options, print_summary, run_sequential
from client.sync_client import ModelClient

PREFIX = "con"
SLOT_POLL_SECONDS = 0.25


async def fit_when_a_slot_is_free(
    client: AsyncModelClient, plan: TrainingPlan, X: Any, y: Any, deadline: float, position: int
) -> tuple[dict[str, Any], int]:
    """Start the fit's job, again after each 503's Retry-After; follow it with a bar.
    Returns the saved model's metadata and how many 503s came before a slot."""
    refused = 0
    while True:
        try:
            job = await client.fit(
                plan.name, plan.model_type, X, y, plan.hyperparameters, wait=False, **HOLDOUT
            )
            break
        except ApiError as error:
            if error.status != 503 or time.monotonic() > deadline:
                raise
            refused += 1
            await slot_free_or_retry_after(client, error.retry_after or 1.0)
    bar = JobBar(plan.name, position)
    try:
        return await client.wait(job, on_progress=bar), refused
    finally:
        bar.close()


async def slot_free_or_retry_after(client: AsyncModelClient, retry_after: float) -> None:
    """Wait until /status shows a free slot, or at most the Retry-After the server sent:
    the speed-up then measures the training, not this client's patience."""
    give_up = time.monotonic() + retry_after
    while time.monotonic() < give_up:
        training = (await client.status())["training"]
        if training["active"] < training["slots"]:
            return
        await asyncio.sleep(SLOT_POLL_SECONDS)


async def train_at_once(
    client: AsyncModelClient, plans: list[TrainingPlan], quick: bool
) -> dict[str, Any]:
    X, y = make_data(quick)
    existing = {m["name"] for m in (await client.models())["models"]}
    for plan in plans:
        if plan.name in existing:  # left by an interrupted run
            await client.remove(plan.name)
    deadline = time.monotonic() + 3600
    started = time.perf_counter()
    outcomes = await asyncio.gather(
        *(
            fit_when_a_slot_is_free(client, plan, X, y, deadline, position)
            for position, plan in enumerate(plans)
        )
    )
    total = time.perf_counter() - started
    fits = [
        {
            "name": plan.name,
            "model_type": plan.model_type,
            "train_seconds": answer["train_seconds"],
            "refused_503": refused,
            "validation": answer["validation"],
        }
        for plan, (answer, refused) in zip(plans, outcomes, strict=True)
    ]
    return {"fits": fits, "total_seconds": total}


async def predict_at_once(
    client: AsyncModelClient, names: list[str], requests: int, concurrency: int, quick: bool
) -> dict[str, Any]:
    """`requests` single-row predictions, `concurrency` at a time, spread over `names`."""
    X, _ = make_data(quick, seed=11)
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(i: int) -> None:
        async with gate:
            began = time.perf_counter()
            await client.predict(names[i % len(names)], [X[i % len(X)]])
            latencies.append(time.perf_counter() - began)

    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(requests)))
    elapsed = time.perf_counter() - started
    return {
        "requests": requests,
        "concurrency": concurrency,
        "per_second": requests / elapsed,
        "p50_ms": percentile(latencies, 50) * 1000,
        "p95_ms": percentile(latencies, 95) * 1000,
        "p99_ms": percentile(latencies, 99) * 1000,
    }


def why_ideal(fits: int, slots: int, cores: int, server_core: int | None) -> str | None:
    """Why the ideal speed-up is 1, in one line (None when it is more)."""
    if min(fits, slots, cores) > 1:
        return None
    if cores == 1 and server_core is not None:
        return (
            f"this machine gives trainings 1 core: one of its {cores + 1} stays with the server; "
            "on N cores up to N-1 fits run at once"
        )
    if slots == 1:
        return "the server has 1 training slot (TRAINING_CORES=2): set TRAINING_CORES higher"
    if cores == 1:
        return "trainings have 1 core here: fits that run at once share it"
    return "there is 1 fit to run"


async def demo(args: Any, sequential: dict[str, Any]) -> int:
    plans = plans_from(sequential, PREFIX)
    quick = bool(sequential["quick"])  # the same data as the run it is compared with
    async with AsyncModelClient(args.url) as client:
        status = await client.status()
        training, max_loaded = status["training"], status["inference"]["max_models"]
        slots, cores = training["slots"], training.get("training_cores", training["slots"])
        print(
            f"\nlaunching {len(plans)} fits at once: the server has {slots} training slot(s) "
            f"on {cores} training core(s)"
        )
        parallel = await train_at_once(client, plans, quick)

        loaded = [plan.name for plan in plans[:max_loaded]]
        for name in loaded:
            await client.load(name)
        print(
            f"\n{args.requests} single-row predictions, {args.concurrency} at a time, "
            f"over {', '.join(loaded)}"
        )
        predictions = await predict_at_once(client, loaded, args.requests, args.concurrency, quick)
        for plan in plans:
            await client.remove(plan.name)

    ideal = min(len(plans), slots, cores)
    why = why_ideal(len(plans), slots, cores, training.get("server_core"))
    speed_up = sequential["total_seconds"] / parallel["total_seconds"]
    print("\nConcurrent training (all launched at once):")
    print(
        table(
            ["model", "server s", "503s before a slot"],
            [[f["name"], f["train_seconds"], f["refused_503"]] for f in parallel["fits"]],
        )
    )
    if quick:  # fits of a fraction of a second: their times are round trips, not training
        print(table(["run", "wall s"], [["sequential", sequential["total_seconds"]],
                                        ["concurrent", parallel["total_seconds"]]]))  # fmt: skip
        print(
            "No speed-up shown: a quick run's fits last a fraction of a second, so these times "
            "measure the service's round trips overlapping, not training. Run without --quick "
            "(fits of 60 s or more) for the speed-up."
        )
    else:
        print(
            table(
                ["run", "wall s", "speed-up", "ideal", "efficiency"],
                [
                    ["sequential", sequential["total_seconds"], 1.0, 1, 1.0],
                    ["concurrent", parallel["total_seconds"], speed_up, ideal, speed_up / ideal],
                ],
            )
        )
        print(
            f"The ideal is min(fits {len(plans)}, training slots {slots}, training cores "
            f"{cores}): beyond it, fits wait for a slot (503, retried) or share a core."
        )
        if why:
            print(why)
    print("\nThe types on the same held-out rows (validation_fraction 0.2, seed 0):")
    baseline = sequential.get("baseline")
    print(scores_table([*parallel["fits"], *([baseline] if baseline else [])]))
    print("\nConcurrent predictions:")
    print(
        table(
            ["requests", "concurrency", "req/s", "p50 ms", "p95 ms", "p99 ms"],
            [
                [
                    predictions["requests"],
                    predictions["concurrency"],
                    predictions["per_second"],
                    predictions["p50_ms"],
                    predictions["p95_ms"],
                    predictions["p99_ms"],
                ]
            ],
        )
    )
    return 0


def main() -> int:
    options = cli.parser(__doc__.splitlines()[0])
    add_sequential_options(options)
    options.add_argument("--compare", action="store_true", help="run the sequential demo first")
    options.add_argument(
        "--requests", type=int, default=400, help="predictions to send (default 400)"
    )
    options.add_argument(
        "--concurrency", type=int, default=32, help="predictions in flight (default 32)"
    )
    args = cli.parse(options)
    if args.compare:
        sequential = run_sequential(args.url, args.quick, args.target_seconds, keep=False)
        print_summary(sequential)
    elif args.results.exists():
        sequential = read_results(args.results)
        print(f"comparing with the sequential run saved in {args.results}")
        print_summary(sequential)
        with ModelClient(args.url) as client:  # the sequential run warmed another server
            warm_up(client, *make_data(bool(sequential["quick"])), PREFIX)
    else:
        print(
            f"no sequential figures in {args.results}: run `python -m client.sequential` "
            "first, or pass --compare",
            file=sys.stderr,
        )
        return 2
    return asyncio.run(demo(args, sequential))


if __name__ == "__main__":
    cli.run(main)
