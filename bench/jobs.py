"""Training jobs: what progress reporting costs, how fast a cancel frees its slot, and what the
training processes' priority does to the server and to the fits themselves."""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import orjson
from sklearn.datasets import make_classification
from threadpoolctl import threadpool_limits

from bench import serving
from bench.harness import Spread, show
from devtools.local_server import uvicorn_server
from server.algorithms import resolve
from server.ml.progress import TrainingCall
from server.training.progress import SharedProgress

# Medium fits of 1 to 3 s each on one core, on the same 20k x 20 data.
MEDIUM_FITS = {
    "RandomForestClassifier": {"n_estimators": 50, "random_state": 0},
    "XGBClassifier": {"n_estimators": 200, "max_depth": 6},
    "LGBMClassifier": {"n_estimators": 300},
    "CatBoostClassifier": {"iterations": 300, "depth": 6},
}
OVERHEAD_REPEATS = 7
CANCELS = 10
BUSY_PROCESS_SECONDS = 90  # the unrelated busy processes of the starvation check end by then
STARVATION_LIMIT_SECONDS = 30


def medium_data() -> tuple[np.ndarray, np.ndarray]:
    return make_classification(n_samples=20_000, n_features=20, random_state=0)


# -- progress overhead ---------------------------------------------------------------------------
def _fit_seconds(model_type: str, with_progress: bool, X: np.ndarray, y: np.ndarray) -> float:
    algorithm = resolve(model_type)
    estimator = algorithm.build(algorithm.effective_hyperparameters(MEDIUM_FITS[model_type]))
    cells = multiprocessing.get_context("spawn").RawArray("d", 3)
    with threadpool_limits(1):  # as in the worker
        started = time.perf_counter()
        if with_progress:
            algorithm.train(estimator, TrainingCall(X, y, SharedProgress(cells)))
        else:  # the previous design: one plain fit (the forest in one call, no callbacks)
            estimator.fit(X, y)
        return time.perf_counter() - started


def progress_overhead() -> list[dict[str, Any]]:
    """Each medium fit with progress against the same fit without, interleaved in-process
    (so that both see the same machine noise); the ratio of medians should be within 3%."""
    X, y = medium_data()
    rows, results = [], []
    for model_type in MEDIUM_FITS:
        plain, reported = [], []
        for _ in range(OVERHEAD_REPEATS):
            plain.append(_fit_seconds(model_type, False, X, y))
            reported.append(_fit_seconds(model_type, True, X, y))
        without, with_ = Spread.of(plain), Spread.of(reported)
        ratio = with_.median / without.median
        rows.append([model_type, with_.s(), without.s(), f"{ratio:.3f}"])
        results.append(
            {"model_type": model_type, "with_s": with_.median, "without_s": without.median}
            | {"ratio": ratio}
        )
    show(
        f"Progress overhead: medium fit (20k x 20) with progress against without, in-process, "
        f"{OVERHEAD_REPEATS} interleaved runs (median, min-max; s)",
        ["model", "with progress", "without", "ratio"],
        rows,
    )
    return results


# -- cancel ------------------------------------------------------------------------------------
def _fit_body(name: str, model_type: str, hyperparameters: dict[str, Any], **config: Any) -> bytes:
    X, y = make_classification(n_samples=2_000, n_features=20, random_state=2)
    return orjson.dumps(
        {
            "X": X,
            "y": y,
            "config": {
                "name": name,
                "model_type": model_type,
                "hyperparameters": hyperparameters,
                **config,
            },
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as reply:
        return await reply.json()


async def cancel_latencies(session: aiohttp.ClientSession, url: str, slots: int) -> Spread:
    """Seconds from sending a cancel to /status showing every slot free again (`slots` of
    them: a cluster's restarted worker must be back), over 10 cancels of a fit that is
    inside its training (progress past 0)."""
    body = _fit_body("cancelled", "RandomForestClassifier", {"n_estimators": 100_000})
    latencies = []
    for _ in range(CANCELS):
        async with session.post(
            f"{url}/fit?wait=false", data=body, headers={"content-type": "application/json"}
        ) as reply:
            job = await reply.json()
        deadline = time.monotonic() + 60
        while not (await _get(session, f"{url}/jobs/{job['id']}"))["progress"]["fraction"]:
            assert time.monotonic() < deadline, "the fit did not start"
            await asyncio.sleep(0.05)
        started = time.perf_counter()
        async with session.post(f"{url}/jobs/{job['id']}/cancel") as reply:
            assert reply.status == 200, await reply.text()
        while True:
            training = (await _get(session, f"{url}/status"))["training"]
            if training["active"] == 0 and training["slots"] >= slots:
                break
            assert time.perf_counter() - started < 30, "the slot did not come free"
        latencies.append(time.perf_counter() - started)
    return Spread.of(latencies)


async def cancel_latency(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    spread = await cancel_latencies(session, url, slots=1)
    show(
        f"Cancel: from POST /jobs/{{id}}/cancel to a free slot in /status, {CANCELS} cancels "
        "of a running fit (contract: within 2 s)",
        ["median ms", "min ms", "max ms"],
        [[f"{spread.median * 1e3:.1f}", f"{spread.low * 1e3:.1f}", f"{spread.high * 1e3:.1f}"]],
    )
    return {"median_s": spread.median, "min_s": spread.low, "max_s": spread.high}


# -- priority ------------------------------------------------------------------------------------
@contextlib.contextmanager
def busy_processes(count: int) -> Iterator[None]:
    """Unrelated CPU-bound processes at normal priority, as on a shared host (bounded)."""
    spin = f"import time\nend = time.time() + {BUSY_PROCESS_SECONDS}\nwhile time.time() < end: pass"
    processes = [subprocess.Popen([sys.executable, "-c", spin]) for _ in range(count)]
    try:
        yield
    finally:
        for process in processes:
            process.kill()
            process.wait()


async def _timed_fit(session: aiohttp.ClientSession, url: str, name: str) -> str:
    """A medium RandomForest fit's wall time, or how it was stopped if it starved."""
    body = _fit_body(
        name,
        "RandomForestClassifier",
        {"n_estimators": 200},
        max_seconds=STARVATION_LIMIT_SECONDS,
    )
    started = time.perf_counter()
    async with session.post(
        f"{url}/fit", data=body, headers={"content-type": "application/json"}
    ) as reply:
        await reply.read()
        status = reply.status
    seconds = time.perf_counter() - started
    if status == 422:
        return f"starved: stopped at {STARVATION_LIMIT_SECONDS} s"
    return f"{seconds:.1f} s"


POLICIES = {  # label: the server's settings
    "cores: trainings off the server's core, nice 0 (default)": {},
    "no pinning, nice 10 (before)": {"PIN_TRAINING_CORES": "false", "TRAINING_NICE": "10"},
    "no pinning, SCHED_IDLE (opt-in)": {
        "PIN_TRAINING_CORES": "false",
        "TRAINING_IDLE_PRIORITY": "true",
    },
}


async def _one_policy(label: str, env: dict[str, str], models_dir: Path) -> dict[str, Any]:
    timeout = aiohttp.ClientTimeout(total=600)
    with uvicorn_server(models_dir, training_cores=3, env=env) as (url, _):
        async with aiohttp.ClientSession(timeout=timeout) as session:
            alone = await _timed_fit(session, url, "alone")
            with busy_processes(2):
                crowded = await _timed_fit(session, url, "crowded")
            rows = await serving.train_models(session, url)
            print(f"\n[{label}]")
            latencies = await serving.responsiveness(session, url, 2, rows)
    return {"alone": alone, "with_2_busy_processes": crowded, **latencies}


def priority(models_dir: Path) -> dict[str, Any]:
    """Where trainings run and at which priority: the server's latency while both slots
    train, and a fit's time alone and beside two unrelated busy processes, per policy."""
    results = {
        label: asyncio.run(_one_policy(label, env, models_dir / str(i)))
        for i, (label, env) in enumerate(POLICIES.items())
    }
    rows = []
    for label, values in results.items():
        idle, training = values["idle"], values["during_training"]
        rows.append(
            [
                label,
                f"{training['health_p99_ms'] / idle['health_p99_ms']:.2f}",
                f"{training['predict_p99_ms'] / idle['predict_p99_ms']:.2f}",
                values["alone"],
                values["with_2_busy_processes"],
            ]
        )
    show(
        "Training priority: p99 while both slots train (x idle), and a 200-tree forest's fit "
        "time alone and beside 2 unrelated busy processes",
        ["policy", "/health p99", "1-row predict p99", "fit alone", "fit + 2 busy"],
        rows,
    )
    return results
