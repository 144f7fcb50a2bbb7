"""What `/load` costs for the three big models, reading only what serves (ESTIMATOR_LOADING=
lazy) against reading everything (eager, as before v3: the estimator unpickled and the
compiled copy checked against it at every load), and what the signature check adds.

- `/load` seconds: two servers on the same files, one per setting, loads alternated
  (ROUNDS each; the model is unloaded between loads);
- resident memory a load adds: a fresh process per setting and round (the libraries
  imported first), as server.inference.loaded.read_model does it;
- HMAC-SHA256: milliseconds per MB over 64 MiB, and what that is for each model's files.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from sklearn.datasets import make_classification

from bench.harness import Spread, show
from devtools.local_server import PROJECT_ROOT, key_file_of, uvicorn_server
from server.store.signing import SigningKey

ROUNDS = 3
MODES = ("eager", "lazy")
MODELS = {  # label: (model type, hyperparameters)
    "RandomForest 300 trees": ("RandomForestClassifier", {"n_estimators": 300}),
    "XGBoost 300 rounds": ("XGBClassifier", {"n_estimators": 300, "max_depth": 8}),
    "CatBoost 500 rounds": ("CatBoostClassifier", {"iterations": 500, "depth": 8}),
}

RSS_SCRIPT = """
import gc, json, sys, time, psutil
from pathlib import Path
from server.algorithms import preload
from server.inference.loaded import read_model
from server.inference.memory import release_unused_memory
from server.store.files import ModelStore
from server.store.keys import read_key_file
import onnxruntime
preload()
store = ModelStore(Path(sys.argv[1]), read_key_file(Path(sys.argv[2])))
gc.collect()
before = psutil.Process().memory_info().rss
started = time.perf_counter()
model = read_model(store, sys.argv[3], 1, "auto", sys.argv[4])
seconds = time.perf_counter() - started
gc.collect()
release_unused_memory()
rss = (psutil.Process().memory_info().rss - before) / 1e6
print(json.dumps({"seconds": seconds, "rss_mb": rss, "runtime": model.choice.name}))
"""


def _in_fresh_process(models_dir: Path, name: str, mode: str) -> dict[str, Any]:
    arguments = [str(models_dir), str(key_file_of(models_dir)), name, mode]
    done = subprocess.run(
        [sys.executable, "-c", RSS_SCRIPT, *arguments],
        capture_output=True,
        text=True,
        check=True,
        cwd=PROJECT_ROOT,
        env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)},
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> float:
    started = time.perf_counter()
    async with session.post(url, data=orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY),
                            headers={"content-type": "application/json"}) as reply:  # fmt: skip
        if reply.status not in (200, 201):
            raise RuntimeError(f"POST {url}: {reply.status}: {await reply.text()}")
    return time.perf_counter() - started


async def _fit_and_time_loads(urls: dict[str, str]) -> dict[str, dict[str, list[float]]]:
    X, y = make_classification(n_samples=20_000, n_features=20, random_state=1)
    seconds: dict[str, dict[str, list[float]]] = {label: {m: [] for m in MODES} for label in MODELS}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1800)) as session:
        for label, (model_type, hyperparameters) in MODELS.items():
            config = {"name": model_type, "model_type": model_type}
            body = {"X": X, "y": y, "config": {**config, "hyperparameters": hyperparameters}}
            await _post(session, f"{urls['lazy']}/fit", body)
            for _ in range(ROUNDS):
                for mode in MODES:
                    named = {"config": {"name": model_type}}
                    seconds[label][mode].append(await _post(session, f"{urls[mode]}/load", named))
                    await _post(session, f"{urls[mode]}/unload", named)
    return seconds


def _hmac_seconds_per_mb() -> Spread:
    data = os.urandom(64 << 20)
    key = SigningKey.generate()

    def once() -> float:
        started = time.perf_counter()
        key.tag("bench/1.joblib", [data])
        return (time.perf_counter() - started) / 64

    return Spread.of([once() for _ in range(5)])


def load_cost(directory: Path) -> dict[str, Any]:
    models_dir = directory / "models"
    with (
        uvicorn_server(models_dir, env={"ESTIMATOR_LOADING": "lazy"}) as (lazy_url, _),
        uvicorn_server(models_dir, env={"ESTIMATOR_LOADING": "eager"}) as (eager_url, _),
    ):
        load_seconds = asyncio.run(_fit_and_time_loads({"lazy": lazy_url, "eager": eager_url}))
    hmac = _hmac_seconds_per_mb()
    results: dict[str, Any] = {"hmac_ms_per_mb": hmac.median * 1e3, "models": {}}
    rows = []
    for label, (name, _) in MODELS.items():
        fresh = {m: [_in_fresh_process(models_dir, name, m) for _ in range(ROUNDS)] for m in MODES}
        file_mb = sum(p.stat().st_size for p in (models_dir / name).glob("1.*")) / 1e6
        loads = {m: Spread.of(load_seconds[label][m]) for m in MODES}
        rss = {m: Spread.of([run["rss_mb"] for run in fresh[m]]) for m in MODES}
        results["models"][label] = {
            "files_mb": file_mb,
            "runtime": fresh["lazy"][0]["runtime"],
            "load_seconds": {m: vars(loads[m]) for m in MODES},
            "rss_mb": {m: vars(rss[m]) for m in MODES},
            "hmac_ms": file_mb * hmac.median * 1e3,
        }
        rows.append(
            [
                label,
                fresh["lazy"][0]["runtime"],
                f"{file_mb:.1f}",
                loads["eager"].s(),
                loads["lazy"].s(),
                f"{loads['eager'].median / loads['lazy'].median:.1f}x",
                f"{rss['eager'].median:.0f} ({rss['eager'].low:.0f}-{rss['eager'].high:.0f})",
                f"{rss['lazy'].median:.0f} ({rss['lazy'].low:.0f}-{rss['lazy'].high:.0f})",
                f"{file_mb * hmac.median * 1e3:.1f}",
            ]
        )
    show(
        f"/load, reading everything (eager, as before) against only what serves (lazy); "
        f"medians of {ROUNDS} alternated loads (range); HMAC-SHA256 "
        f"{hmac.median * 1e3:.2f} ms per MB ({hmac.low * 1e3:.2f}-{hmac.high * 1e3:.2f})",
        [
            "model",
            "serves",
            "files MB",
            "/load s eager",
            "/load s lazy",
            "faster",
            "RSS MB eager",
            "RSS MB lazy",
            "HMAC ms",
        ],
        rows,
    )
    return results


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory() as temporary:
        print(json.dumps(load_cost(Path(temporary)), indent=2))
