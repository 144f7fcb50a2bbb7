"""Real tables (issue 38): what the service's own handling of text columns scores and costs,
against each library's idiomatic pipeline, and what a categorical column costs a 1-row
prediction.

Quality, in this process: per type and table, the held-out score of the service's fit (its
own code, `labelled` and `fit_model`, on the service's split) against the library's own
pipeline on the same training and held-out rows: CatBoost with `cat_features`, LightGBM and
XGBoost on pandas categories, scikit-learn's one-hot (and, for LogisticRegression, a
standard scaler and mean imputer) in a Pipeline. Goal: at least the pipeline's score minus
0.02 (ROC AUC for two classes, accuracy for more). Fit wall times side by side.

Cost, on a real server: 1-row `/predict` of a model with categorical columns against the
same type trained on numbers alone (the same rows, each text column replaced by its codes as
plain numbers), on the same runtime, interleaved; for CatBoost, whose categorical model is
served by CatBoost itself, also against the compiled numeric model. Goal: at most 1.5x.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import warnings
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from bench.harness import Spread, show, timed_post
from devtools.local_server import uvicorn_server
from server.algorithms import MODEL_TYPES, resolve
from server.ingest.inputs import FitInput
from server.ml.progress import NoProgress
from server.ml.scoring import holdout, scores
from server.schemas import FitConfig
from server.service.fitting import labelled
from server.tables.raw import RawTable
from server.training.fit import fit_model
from server.training.request import Holdout, TrainingRequest

FRACTION, SEED = 0.25, 0
SETTINGS: dict[str, dict[str, Any]] = {
    "LogisticRegression": {"max_iter": 1000},
    "RandomForestClassifier": {"n_estimators": 200, "random_state": 0},
    "XGBClassifier": {"n_estimators": 200},
    "LGBMClassifier": {"n_estimators": 200},
    "CatBoostClassifier": {"iterations": 300},
}


def churn(rows: int = 6000, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """A customer list: text columns of 3 to 50 levels with gaps, unscaled numbers with gaps."""
    rng = np.random.default_rng(seed)
    contract = rng.choice(["Month-to-month", "One year", "Two year"], rows, p=[0.5, 0.3, 0.2])
    state = rng.choice([f"S{i:02d}" for i in range(50)], rows)
    payment = rng.choice(["card", "check", "transfer", "cash"], rows)
    tenure = rng.integers(0, 72, rows).astype(float)
    monthly = rng.uniform(20, 120, rows) * 100
    effect = {s: v for s, v in zip(np.unique(state), rng.normal(0, 0.6, 50), strict=True)}
    signal = (
        (contract == "Month-to-month") * 1.4
        - tenure / 25
        + monthly / 6000
        + np.vectorize(effect.get)(state)
        + (payment == "check") * 0.5
    )
    y = pd.Series(np.where(signal + rng.logistic(0, 0.6, rows) > 0.6, "Yes", "No"))
    table = pd.DataFrame(
        {"contract": contract, "state": state, "payment": payment,
         "tenure": tenure, "monthly": monthly}
    ).astype({"contract": object, "state": object, "payment": object})  # fmt: skip
    for column, share in (("contract", 0.05), ("state", 0.03), ("monthly", 0.08)):
        table.loc[rng.random(rows) < share, column] = None
    return table, y


def penguins() -> tuple[pd.DataFrame, pd.Series]:
    from palmerpenguins import load_penguins

    table = load_penguins()
    return table.drop(columns=["species", "year"]), table["species"]


TABLES = {"churn (generated)": churn, "penguins (palmerpenguins)": penguins}


def _service(model_type: str, X: pd.DataFrame, y: pd.Series) -> tuple[float, float]:
    """The service's held-out score and fit seconds."""
    names = list(X.columns)
    raw = RawTable([_values(X[c]) for c in names], len(X))
    config = FitConfig.model_validate({"name": "b", "model_type": model_type})
    table = labelled(FitInput(config, raw, y.tolist(), names), FRACTION, SEED, 1000)
    algorithm = resolve(model_type)
    request = TrainingRequest(
        name="b", model_type=model_type,
        hyperparameters=algorithm.effective_hyperparameters(SETTINGS[model_type]),
        X=table.X, y_encoded=table.y_encoded, classes=table.classes, feature_names=names,
        columns=table.columns, holdout=Holdout(FRACTION, SEED), compile=False,
    )  # fmt: skip
    started = time.perf_counter()
    fitted = fit_model(request, NoProgress())
    seconds = time.perf_counter() - started
    return _score(fitted.metadata["validation"]["scores"], len(table.classes)), seconds


def _values(column: pd.Series) -> Any:
    """A column as a request brings it: text as JSON values, numbers as float64."""
    if _is_text(column):
        return [None if v is None or v != v else v for v in column.tolist()]
    return column.to_numpy(np.float64)


def _is_text(column: pd.Series) -> bool:
    return column.dtype == object or pd.api.types.is_string_dtype(column)


def _score(found: dict[str, float], classes: int) -> float:
    return float(found["roc_auc"] if classes == 2 else found["accuracy"])


def _pipeline(model_type: str, X: pd.DataFrame, y: pd.Series) -> tuple[float, float]:
    """The library's idiomatic pipeline on the same split: held-out score and fit seconds."""
    classes = sorted(set(y))
    encoded = np.searchsorted(classes, y.to_numpy())
    train, held_out = holdout(len(X), encoded, FRACTION, SEED)
    text = [c for c in X.columns if _is_text(X[c])]
    numbers = [c for c in X.columns if c not in text]
    settings = {**SETTINGS[model_type]}
    frame = X.copy()
    if model_type in ("XGBClassifier", "LGBMClassifier"):
        frame[text] = frame[text].astype("category")
        extra = {"enable_categorical": True} if model_type == "XGBClassifier" else {}
        model = resolve(model_type).build({**settings, **extra, "n_jobs": 1, "verbose": -1}
                                          if model_type == "LGBMClassifier"
                                          else {**settings, **extra, "n_jobs": 1})  # fmt: skip
    elif model_type == "CatBoostClassifier":
        frame[text] = frame[text].fillna("missing")
        model = resolve(model_type).build({**settings, "cat_features": text, "thread_count": 1,
                                           "logging_level": "Silent",
                                           "allow_writing_files": False})  # fmt: skip
    else:
        from sklearn.compose import ColumnTransformer
        from sklearn.impute import SimpleImputer
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import OneHotEncoder, StandardScaler

        one_hot = make_pipeline(
            SimpleImputer(strategy="constant", fill_value="missing"),
            OneHotEncoder(handle_unknown="ignore"),
        )
        scaled: Any = "passthrough"
        if model_type == "LogisticRegression":
            scaled = make_pipeline(SimpleImputer(add_indicator=True), StandardScaler())
        prepare = ColumnTransformer(
            [("text", one_hot, text), ("numbers", scaled, numbers)], sparse_threshold=0
        )
        threads = {} if model_type == "LogisticRegression" else {"n_jobs": 1}
        model = make_pipeline(prepare, resolve(model_type).build({**settings, **threads}))
    started = time.perf_counter()
    model.fit(frame.iloc[train], encoded[train])
    seconds = time.perf_counter() - started
    probabilities = model.predict_proba(frame.iloc[held_out])
    return _score(scores(encoded[held_out], probabilities), len(classes)), seconds


def quality() -> list[dict[str, Any]]:
    results = []
    for table_name, make in TABLES.items():
        X, y = make()
        for model_type in MODEL_TYPES:
            with warnings.catch_warnings(), threadpool_limits(limits=1):
                warnings.simplefilter("ignore")
                ours, our_seconds = _service(model_type, X, y)
                theirs, their_seconds = _pipeline(model_type, X, y)
            results.append({
                "table": table_name, "type": model_type, "service": round(ours, 4),
                "pipeline": round(theirs, 4), "difference": round(ours - theirs, 4),
                "goal_met": ours >= theirs - 0.02, "fit_seconds": round(our_seconds, 3),
                "pipeline_fit_seconds": round(their_seconds, 3),
            })  # fmt: skip
    show(
        "Real tables: held-out score (ROC AUC for two classes, accuracy for three) and fit "
        "time, the service against the library's own pipeline on the same split",
        ["table", "type", "service", "pipeline", "service - pipeline (goal >= -0.02)",
         "fit s: service / pipeline"],
        [[r["table"], r["type"], r["service"], r["pipeline"], r["difference"],
          f"{r['fit_seconds']} / {r['pipeline_fit_seconds']}"] for r in results],
    )  # fmt: skip
    return results


async def _latencies(url: str, bodies: dict[str, bytes], rounds: int = 7) -> dict[str, Spread]:
    """Medians of 200 sequential 1-row predicts per model and round, rounds interleaved."""
    found: dict[str, list[float]] = {name: [] for name in bodies}
    async with aiohttp.ClientSession() as session:
        for body in bodies.values():  # warm up
            for _ in range(50):
                await timed_post(session, f"{url}/predict", body, 200)
        for _ in range(rounds):
            for name, body in bodies.items():
                times = [await timed_post(session, f"{url}/predict", body, 200) for _ in range(200)]
                found[name].append(statistics.median(times))
    return {name: Spread.of(values) for name, values in found.items()}


def predict_cost(directory: Path) -> list[dict[str, Any]]:
    import httpx

    X, y = churn(rows=3000)
    text = [c for c in X.columns if _is_text(X[c])]
    as_numbers = X.copy()
    for column in text:  # the same information as plain numbers: each level's code
        as_numbers[column] = as_numbers[column].astype("category").cat.codes.replace(-1, np.nan)
    row_text = json.loads(X.head(1).to_json(orient="records"))
    row_numbers = json.loads(as_numbers.head(1).to_json(orient="records"))
    bodies: dict[str, dict[str, bytes]] = {"auto": {}, "native": {}}
    runtimes: dict[str, str] = {}
    with uvicorn_server(directory, env={"MAX_INFERENCE_MODELS": "12"}) as (url, _):
        with httpx.Client(base_url=url, timeout=600) as client:
            for model_type in MODEL_TYPES:
                for kind, frame, row in (("categorical", X, row_text),
                                         ("numeric", as_numbers, row_numbers)):  # fmt: skip
                    name = f"{model_type[:5].lower()}-{kind}"
                    records = json.loads(frame.to_json(orient="records"))
                    config = {"name": name, "model_type": model_type,
                              "hyperparameters": SETTINGS[model_type]}  # fmt: skip
                    answer = client.post("/fit", json={"records": records, "y": y.tolist(),
                                                       "config": config})  # fmt: skip
                    answer.raise_for_status()
                    client.post("/load", json={"config": {"name": name}}).raise_for_status()
                    runtimes[name] = client.get(f"/models/{name}").json()["runtime"]
                    body = json.dumps({"records": row, "config": {"name": name}}).encode()
                    bodies["auto"][name] = bodies["native"][name] = body
        auto = asyncio.run(_latencies(url, bodies["auto"]))
    native_names = {n: b for n, b in bodies["native"].items() if n.startswith("catbo")}
    with uvicorn_server(
        directory, env={"MAX_INFERENCE_MODELS": "12", "INFERENCE_RUNTIME": "native"}
    ) as (url, _):
        with httpx.Client(base_url=url, timeout=600) as client:
            for name in native_names:
                client.post("/load", json={"config": {"name": name}}).raise_for_status()
        native = asyncio.run(_latencies(url, native_names))
    results = []
    for model_type in MODEL_TYPES:
        short = model_type[:5].lower()
        categorical, numeric = f"{short}-categorical", f"{short}-numeric"
        same = auto[numeric] if runtimes[categorical] == runtimes[numeric] else native[numeric]
        results.append({
            "type": model_type, "runtime": runtimes[categorical],
            "categorical_ms": auto[categorical].ms(), "numeric_same_runtime_ms": same.ms(),
            "ratio": round(auto[categorical].median / same.median, 2),
            "numeric_compiled_ms": auto[numeric].ms() if same is not auto[numeric] else None,
        })  # fmt: skip
    show(
        "Real tables: 1-row /predict (records, ms) of a model with categorical columns against "
        "the same type on numbers alone, same runtime (goal <= 1.5x); medians of 7 rounds of "
        "200 requests, interleaved",
        ["type", "runtime", "categorical", "numeric (same runtime)", "ratio",
         "numeric compiled"],
        [[r["type"], r["runtime"], r["categorical_ms"], r["numeric_same_runtime_ms"],
          r["ratio"], r["numeric_compiled_ms"] or ""] for r in results],
    )  # fmt: skip
    return results


def real_tables(directory: Path) -> dict[str, Any]:
    return {"quality": quality(), "predict": predict_cost(directory)}
