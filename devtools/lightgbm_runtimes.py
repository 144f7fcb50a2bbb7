"""What can serve a LightGBM model, measured in-process on one thread (docs/compiled.md,
"LightGBM and a compiler"; issue 31):

- the scikit-learn wrapper's `predict_proba` against the Booster as the server asks it
  (`NativeRuntime`), for 100, 300 and 1000 trees, 1 and 100 rows;
- where they are installed (they are not requirements): Treelite's GTIL and TL2cgen (C
  through gcc) on the 300-tree model with missing values, their compile time, their 1-row
  cost and their largest difference from the Booster on rows at, above and below every
  split value and NaN; lleaves, whether it compiles at all on this llvmlite.

    python -m devtools.lightgbm_runtimes
    pip install treelite==4.8.1 tl2cgen==1.0.0 lleaves==1.3.0   # to compare those too
"""

from __future__ import annotations

import importlib.util
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
from sklearn.datasets import make_classification

from server.algorithms import resolve
from server.inference.compiled.probes import probe_rows
from server.inference.compiled.runtimes import NativeRuntime


def median_us(call: Callable[[], Any], times: int) -> float:
    for _ in range(20):
        call()
    samples = []
    for _ in range(times):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples) * 1e6


def wrapper_against_booster() -> None:
    X, y = make_classification(n_samples=5000, n_features=20, random_state=1)
    print("trees  rows  wrapper us  booster us  wrapper / booster")
    for trees in (100, 300, 1000):
        model = lightgbm.LGBMClassifier(n_estimators=trees, num_leaves=63, n_jobs=1, verbose=-1)
        model.fit(X, y)
        runtime = NativeRuntime(model, {})
        for rows in (1, 100):
            x, times = X[:rows], 300 if rows == 1 else 100
            wrapped = median_us(lambda m=model, x=x: m.predict_proba(x), times)
            direct = median_us(lambda r=runtime, x=x: r.probabilities(x), times)
            print(f"{trees:5}  {rows:4}  {wrapped:10.0f}  {direct:10.0f}  {wrapped / direct:.1f}x")


def compilers() -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5000, 20))
    X[rng.random(X.shape) < 0.05] = np.nan
    y = (np.nansum(X[:, :5], axis=1) + rng.normal(size=len(X)) > 0).astype(int)
    model = lightgbm.LGBMClassifier(n_estimators=300, num_leaves=63, n_jobs=1, verbose=-1)
    booster = model.fit(X, y).booster_
    rows = probe_rows(X, resolve("LGBMClassifier").thresholds(model, X.shape[1]), limit=20_000)
    rows[::5, 0] = np.nan
    native = booster.predict(rows, num_threads=1)
    one = rows[:1]
    print(f"\n300 trees, {len(rows)} probe rows; Booster 1 row: "
          f"{median_us(lambda: booster.predict(one, num_threads=1), 500):.0f} us")  # fmt: skip
    if importlib.util.find_spec("treelite") is None:
        print("treelite, tl2cgen: not installed")
    else:
        import tl2cgen
        import treelite

        converted = treelite.frontend.from_lightgbm(booster)
        gtil = treelite.gtil.predict(converted, rows, nthread=1).reshape(len(rows), -1)[:, -1]
        cost = median_us(lambda: treelite.gtil.predict(converted, one, nthread=1), 500)
        print(f"GTIL: 1 row {cost:.0f} us, largest difference {np.abs(gtil - native).max():.2e}")
        with tempfile.TemporaryDirectory() as scratch:
            library = str(Path(scratch) / "model.so")
            started = time.perf_counter()
            tl2cgen.export_lib(converted, toolchain="gcc", libpath=library)
            compiled_in = time.perf_counter() - started
            predictor = tl2cgen.Predictor(library, nthread=1)
            answers = predictor.predict(tl2cgen.DMatrix(rows, dtype="float64"))
            difference = np.abs(answers.reshape(len(rows), -1)[:, -1] - native).max()
            cost = median_us(lambda: predictor.predict(tl2cgen.DMatrix(one, dtype="float64")), 500)
            print(f"TL2cgen: compiled in {compiled_in:.1f} s, 1 row {cost:.0f} us, "
                  f"largest difference {difference:.2e}")  # fmt: skip
    if importlib.util.find_spec("lleaves") is None:
        print("lleaves: not installed")
        return
    import lleaves

    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.txt"
        booster.save_model(path)
        try:
            lleaves.Model(model_file=str(path)).compile()
            print("lleaves: compiles")
        except Exception as error:  # what stops it on this llvmlite
            print(f"lleaves: {type(error).__name__}: {error}")


if __name__ == "__main__":
    wrapper_against_booster()
    compilers()
