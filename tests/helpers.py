"""Data and waiting helpers for the tests."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
from scipy.special import expit, softmax
from sklearn.datasets import make_classification

from devtools.local_server import PROJECT_ROOT, key_file_of
from devtools.saved import saved_bundle
from server.algorithms import MODEL_TYPES as ALGORITHM_NAMES
from server.store.files import ModelStore
from server.store.keys import read_key_file
from server.store.signing import SigningKey
from server.training.cores import allowed_cores
from server.trust.command import resign

MODEL_TYPES = list(ALGORITHM_NAMES)

# A fixed key for stores that tests build directly (servers make their own).
KEY = SigningKey(b"a key that only the tests use, 32+ bytes")


def server_store(models_dir: Path) -> ModelStore:
    """The store as a server started by devtools.local_server sees it (with its key)."""
    return ModelStore(models_dir, read_key_file(key_file_of(models_dir)))


def rewrite_saved(
    models_dir: Path,
    name: str,
    change: dict[str, Any],
    version: int = 1,
    metadata_change: dict[str, Any] | None = None,
) -> None:
    """Change what a version saved, as an older server would have written it (one file, the
    compiled copy inside, no record of the fit's check), signed again with the server's key:
    for tests of what the server does with such a file at load, beyond its signature. A
    value of `...` deletes the key."""
    bundle = {**saved_bundle(models_dir, name, version), **change}
    for key in [key for key, value in change.items() if value is ...]:
        del bundle[key]
    store = server_store(models_dir)
    joblib.dump(bundle, store.model_path(name, version))
    store.onnx_path(name, version).unlink(missing_ok=True)
    metadata = store.signed_metadata(name, version)
    metadata.pop("serving", None)
    for key, value in (metadata_change or {}).items():
        if value is ...:
            metadata.pop(key, None)
        else:
            metadata[key] = value
    store.write_metadata(name, version, metadata)
    resign(store, store.key, name, version, [store.model_path(name, version)])


def estimator_input(models_dir: Path, name: str, X: np.ndarray, version: int = 1) -> np.ndarray:
    """What a version's estimator computes on for these rows of codes: its preparation's
    output (RandomForest with categorical columns, LogisticRegression), or the rows."""
    from server.algorithms.preparation import Preparation

    metadata = server_store(models_dir).read_metadata(name, version)
    preparation = Preparation.from_metadata(metadata.get("preparation"))
    return X if preparation is None else preparation.transform(X)


def answered(response: Any) -> dict[str, Any]:
    """A /predict answer without its request id (which every request has its own of)."""
    body = response.json() if hasattr(response, "json") else response
    return {key: value for key, value in body.items() if key != "request_id"}


def files_under(directory: Path) -> list[str]:
    """Every file under `directory`, as sorted paths relative to it."""
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*") if p.is_file())


def files_of(models_dir: Path, name: str) -> list[str]:
    """Every file of `name`: its folder's (temporary ones included), and its folder while it
    is being removed."""
    if not models_dir.exists():
        return []
    folder = models_dir / name
    found = [str(p.relative_to(models_dir)) for p in folder.rglob("*")] if folder.exists() else []
    found += [p.name for p in models_dir.glob(f".{name}.*")]
    return sorted(found)


def dataset(
    n_samples: int = 60, n_features: int = 4, labels: str = "int", n_classes: int = 2, seed: int = 0
) -> tuple[list[list[float]], list[Any]]:
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=min(n_features, 3),
        n_redundant=0,
        n_classes=n_classes,
        random_state=seed,
    )
    if labels == "str":
        names = ["cat", "dog", "eel", "fox"]
        return X.tolist(), [names[int(label)] for label in y]
    return X.tolist(), [int(label) * 10 + 1 for label in y]  # not 0..k-1 on purpose


def fit_body(
    name: str,
    model_type: str = "LogisticRegression",
    hyperparameters: dict[str, Any] | None = None,
    **data: Any,
) -> dict[str, Any]:
    X, y = dataset(**data)
    config: dict[str, Any] = {"name": name, "model_type": model_type}
    if hyperparameters is not None:
        config["hyperparameters"] = hyperparameters
    return {"X": X, "y": y, "config": config}


def slow_fit_body(name: str) -> dict[str, Any]:
    """A fit that keeps its slot busy for many seconds (the app's shutdown stops it)."""
    return fit_body(
        name, "RandomForestClassifier", {"n_estimators": 20_000}, n_samples=2_000, n_features=20
    )


def named(name: str, **extra: Any) -> dict[str, Any]:
    return {"config": {"name": name, **extra}}


async def wait_until(
    condition: Callable[[], Awaitable[bool]], timeout: float = 60.0, what: str = "condition"
) -> None:
    """Poll `condition` until it holds; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not await condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


# Files the service keeps beside the names (server.store.numbers, server.replication.manifest).
SERVICE_FILES = ("_numbers.json", "_serving.json", "_capture.json")


def models_in(folder: Path) -> list[str]:
    """What a store holds besides the service's own files: model folders, leftovers."""
    return sorted(p.name for p in folder.iterdir() if p.name not in SERVICE_FILES)


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    """`wait_until` for code without an event loop (threads, real servers)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


async def wait_training(client: httpx.AsyncClient, name: str) -> None:
    async def training() -> bool:
        status = (await client.get("/status")).json()
        return name in status["training"]["models"]

    await wait_until(training, what=f"'{name}' to be training")


def rows(X: np.ndarray) -> list[list[float | None]]:
    """JSON rows of a matrix: null where a value is missing (NaN)."""
    return [[None if np.isnan(v) else float(v) for v in row] for row in X]


def predict_rows(client: httpx.Client, name: str, X: np.ndarray) -> dict[str, Any]:
    """POST /predict with probabilities over a real socket; the answer, asserted 200."""
    body = {"X": rows(X), "config": {"name": name, "probabilities": True}}
    answer = client.post("/predict", json=body)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def stated_tolerance(bundle: dict[str, Any]) -> float:
    """The tolerance a saved model's compiled copy is checked against (0: none is saved)."""
    from server.inference.compiled.comparison import tolerance
    from server.inference.compiled.probes import graph_trees
    from server.inference.compiled.runtimes import OnnxRuntime

    if bundle.get("onnx") is None:
        return 0.0
    n_trees = graph_trees(bundle["onnx"], int(bundle["n_features"]))[1]
    return tolerance(OnnxRuntime(bundle["onnx"]), n_trees)


def run_trust(models: Path, *args: str, env: dict[str, str] | None = None, status: int = 0) -> str:
    """`python -m server.trust ARGS` on the models of servers started on `models`, as an
    operator runs it; its output (and errors), asserted to exit with `status`."""
    environment = {
        **os.environ,
        "MODELS_PATH": str(models),
        "MODEL_SIGNING_KEY_FILE": str(key_file_of(models)),
        **(env or {}),
    }
    done = subprocess.run(
        [sys.executable, "-m", "server.trust", *args],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == status, done.stdout + done.stderr
    return done.stdout + done.stderr


def core_plan() -> dict[str, Any]:
    """What /status says of the cores on this machine, with the default pinning: the lowest
    allowed core is the server's, the others the trainings' (one core: shared, unpinned)."""
    cores = allowed_cores()
    if len(cores) < 2:
        return {"training_cores": len(cores), "server_core": None}
    return {"training_cores": len(cores) - 1, "server_core": min(cores)}


def explained_probabilities(output: str, totals: np.ndarray) -> np.ndarray:
    """An explanation's (rows, outputs) totals, base + contributions, as the probabilities of
    every class: through the sigmoid (`log_odds`, one output), the softmax (`raw`), or as they
    are (`probability`; one output is the second class's)."""
    if output == "log_odds":
        totals = expit(totals)
    elif output == "raw":
        return np.asarray(softmax(totals, axis=1))
    if totals.shape[1] == 1:
        return np.column_stack([1 - totals[:, 0], totals[:, 0]])
    return totals
