"""From /fit to the first answer: where the time goes for the four types the demos train.

For each type, a medium fit on 20k x 20 through the server: the /fit call (training, then
compiling the ONNX copy, checking it against the estimator, saving), then /load (which checks
the copy again, on the server's ONNX Runtime) and the first /predict. Each phase's own time
comes from the fit's metadata; the rest of the /fit call is the process hop and the save.
Then, in-process on the same forest, the compiling phase against the previous design:
skl2onnx's converter against the forest's graph built from its arrays (server's own).
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import aiohttp
import numpy as np
import orjson
from sklearn.datasets import make_classification

from bench.harness import Spread, show
from server.algorithms import resolve
from server.algorithms.forest_graph import forest_to_onnx
from server.algorithms.onnx_export import SKLEARN_OPSETS

MODELS = {
    "RandomForest (100 trees)": ("farf", "RandomForestClassifier", {"n_estimators": 100}),
    "XGBoost (300 rounds)": ("faxgb", "XGBClassifier", {"n_estimators": 300}),
    "LightGBM (300 rounds)": ("falgbm", "LGBMClassifier", {"n_estimators": 300}),
    "CatBoost (300 iterations)": ("facat", "CatBoostClassifier", {"iterations": 300}),
}


async def _timed(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, Any]:
    started = time.perf_counter()
    async with session.post(url, data=body, headers={"content-type": "application/json"}) as reply:
        answer = await reply.json()
        assert reply.status in (200, 201), answer
    return time.perf_counter() - started, answer


async def first_answer(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    X, y = make_classification(n_samples=20_000, n_features=20, random_state=2)
    results: dict[str, Any] = {}
    for label, (name, model_type, hyperparameters) in MODELS.items():
        config = {"name": name, "model_type": model_type, "hyperparameters": hyperparameters}
        fit_body = orjson.dumps(
            {"X": X, "y": y, "config": config}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        fit_s, metadata = await _timed(session, f"{url}/fit", fit_body)
        load_s, _ = await _timed(session, f"{url}/load", orjson.dumps({"config": {"name": name}}))
        predict_body = orjson.dumps(
            {"X": np.asarray(X[:1]), "config": {"name": name}}, option=orjson.OPT_SERIALIZE_NUMPY
        )
        predict_s, _ = await _timed(session, f"{url}/predict", predict_body)
        async with session.get(f"{url}/models/{name}") as reply:
            info = await reply.json()
        compiled = metadata["compiled"] or {}
        results[label] = {
            "fit_seconds": fit_s,
            "train_seconds": metadata["train_seconds"],
            "compile_seconds": compiled.get("seconds"),
            "check_seconds": compiled.get("check_seconds"),
            "load_seconds": load_s,
            "predict_seconds": predict_s,
            "first_answer_seconds": fit_s + load_s + predict_s,
            "runtime": info["runtime"],
        }
    show(
        "From /fit to the first answer (s): the /fit call and its phases, /load, first /predict",
        ["model", "/fit", "training", "compiling", "checking", "/load", "first answer", "serves"],
        [
            [
                label,
                f"{r['fit_seconds']:.2f}",
                f"{r['train_seconds']:.2f}",
                "-" if r["compile_seconds"] is None else f"{r['compile_seconds']:.2f}",
                "-" if r["check_seconds"] is None else f"{r['check_seconds']:.2f}",
                f"{r['load_seconds']:.2f}",
                f"{r['first_answer_seconds']:.2f}",
                r["runtime"],
            ]
            for label, r in results.items()
        ],
    )
    return results


def forest_conversion(rounds: int = 3) -> dict[str, Any]:
    """The 100-tree forest of the table above, converted both ways, alternated."""
    from skl2onnx import to_onnx

    X, y = make_classification(n_samples=20_000, n_features=20, random_state=2)
    algorithm = resolve("RandomForestClassifier")
    forest = algorithm.build(algorithm.effective_hyperparameters({"n_estimators": 100}))
    forest.fit(X, y)
    ways = {
        "skl2onnx (v2.1)": lambda: to_onnx(
            forest, X[:1], options={"zipmap": False}, target_opset=SKLEARN_OPSETS
        ),
        "from the trees' arrays (now)": lambda: forest_to_onnx(forest, X.shape[1]),
    }
    seconds: dict[str, list[float]] = {way: [] for way in ways}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(rounds):
            for way, convert in ways.items():
                started = time.perf_counter()
                convert()
                seconds[way].append(time.perf_counter() - started)
    spreads = {way: Spread.of(values) for way, values in seconds.items()}
    before, now = spreads.values()
    show(
        f"Compiling the 100-tree forest (20k x 20), in-process, median (min-max) of {rounds} alternated runs",
        ["converter", "seconds"],
        [[way, spread.s()] for way, spread in spreads.items()],
    )
    print(f"the forest's own graph: {before.median / now.median:.1f}x faster than skl2onnx")
    return {way: spread.__dict__ for way, spread in spreads.items()}
