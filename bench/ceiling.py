"""The ceiling: the service beside what Python HTTP can do at all, with the same bytes.

wrk (a C load generator, one thread) sends the same body to each app, alternated cell by cell,
ROUNDS times; figures are medians with their range. The apps, all on uvicorn with httptools
and uvloop, on free ports of 127.0.0.1:
- `service`: this service with its defaults (metrics and the access log on);
- `previous`: the service at PREVIOUS_DESIGN (a git worktree of that commit), the design
  before the hot path was cut, so the change is measured side by side in one run;
- `before` (with `--before COMMIT`): the service at another commit, on a copy of the same
  store, for a change that must leave the figures as they were (issue 28's move);
- `raw`, `fastapi`, `onnx`: bench/reference_apps.py (a constant answer from a bare Starlette
  route, from a FastAPI route, and ten lines of FastAPI calling ONNX Runtime inline).

Server CPU per request is the server process's user+system time over the run (psutil),
divided by the requests wrk completed: what one request costs the core that serves.
"""

from __future__ import annotations

import json
import statistics
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import psutil
from sklearn.datasets import make_classification

from bench import wrk
from bench.checkouts import service_at, worktree
from bench.harness import show
from devtools.local_server import uvicorn_server
from devtools.saved import saved_bundle

ROUNDS = 3
SECONDS = 3
# The commit before issue 19 ("the floor of Python HTTP") changed the serving path.
PREVIOUS_DESIGN = "d472141eb4"
MODELS = {  # name: model type, hyperparameters, features
    "lr": ("LogisticRegression", {}, 10),
    "rf": ("RandomForestClassifier", {"n_estimators": 100}, 20),
    "xgb": ("XGBClassifier", {"n_estimators": 300}, 20),
    "lgbm": ("LGBMClassifier", {"n_estimators": 300, "num_leaves": 63}, 20),
}
UNCOMPILED = {"lgbm", "lr"}  # no ONNX copy (docs/compiled.md): the ten-line ONNX handler has none
CELLS = (  # label, model, rows per request, connections
    ("LogisticRegression, 1 row", "lr", 1, 1),
    ("LogisticRegression, 1 row", "lr", 1, 8),
    ("LogisticRegression, 1 row", "lr", 1, 32),
    ("RandomForest, 1 row", "rf", 1, 1),
    ("RandomForest, 1 row", "rf", 1, 8),
    ("RandomForest, 1 row", "rf", 1, 32),
    ("RandomForest, 100 rows", "rf", 100, 8),
    ("XGBoost, 1 row", "xgb", 1, 8),
    ("LightGBM, 1 row", "lgbm", 1, 8),
)


def _measured(url: str, pid: int, script: Path, connections: int) -> dict[str, float]:
    process = psutil.Process(pid)
    before = process.cpu_times()
    found = wrk.run(f"{url}/predict", script, connections, SECONDS)
    after = process.cpu_times()
    cpu = (after.user - before.user) + (after.system - before.system)
    found["cpu_us"] = cpu / found["requests"] * 1e6
    return found


def _train(url: str, models: Path) -> dict[str, bytes]:
    """Fit and load the models; returns the request body of each (model, rows)."""
    bodies = {}
    with httpx.Client(base_url=url, timeout=300) as client:
        for name, (model_type, hyperparameters, features) in MODELS.items():
            X, y = make_classification(n_samples=5_000, n_features=features, random_state=1)
            config = {"name": name, "model_type": model_type, "hyperparameters": hyperparameters}
            fitted = client.post("/fit", json={"X": X.tolist(), "y": y.tolist(), "config": config})
            assert fitted.status_code == 201, fitted.text
            assert client.post("/load", json={"config": {"name": name}}).status_code == 200
            for rows in (1, 100):
                body = {"X": np.round(X[:rows], 6).tolist(), "config": {"name": name}}
                bodies[f"{name}/{rows}"] = json.dumps(body).encode()
    return bodies


def ceiling(
    directory: Path,
    rounds: int = ROUNDS,
    cells: tuple[int, ...] | None = None,
    before: str | None = None,
) -> dict[str, Any]:
    if not wrk.installed():
        print("\nCeiling: skipped, wrk is not installed (apt-get install wrk)")
        return {"skipped": "wrk is not installed"}
    directory.mkdir(parents=True, exist_ok=True)
    models = directory / "models"
    with ExitStack() as stack:
        service, service_process = stack.enter_context(
            uvicorn_server(
                models,
                env={"ACCESS_LOG": "text", "MAX_INFERENCE_MODELS": "5"},
                log=directory / "service.log",
            )
        )
        bodies = _train(service, models)
        scripts, answers = {}, {}
        for key, body in bodies.items():
            lua = directory / f"{key.replace('/', '-')}.lua"
            scripts[key] = wrk.post_script(lua, body.decode())
        for name in MODELS:  # the constant answers: the service's own, to the 1-row body
            answers[name] = httpx.post(f"{service}/predict", content=bodies[f"{name}/1"]).json()
        answers_file = directory / "answers.json"
        answers_file.write_text(json.dumps(answers))
        apps = {"service": (service, service_process.pid)}
        previous = stack.enter_context(worktree(PREVIOUS_DESIGN, directory))
        if previous is not None:
            url, process = stack.enter_context(
                uvicorn_server(
                    directory / "previous-models",
                    env={"ACCESS_LOG": "text", "MAX_INFERENCE_MODELS": "5"},
                    log=directory / "previous.log",
                    cwd=previous,
                )
            )
            for name in MODELS:  # the same models, as the previous design (v2's layout) reads them
                previous_models = directory / "previous-models"
                joblib.dump(saved_bundle(models, name), previous_models / f"{name}.joblib")
                # One file with the compiled copy inside: its size is what v2 checks.
                metadata = json.loads((models / name / "1.json").read_text())
                metadata["size_bytes"] = (previous_models / f"{name}.joblib").stat().st_size
                (previous_models / f"{name}.json").write_text(json.dumps(metadata))
            with httpx.Client(base_url=url, timeout=60) as client:
                for name in MODELS:
                    assert client.post("/load", json={"config": {"name": name}}).status_code == 200
            apps["previous"] = (url, process.pid)
        if before is not None:
            apps["before"] = stack.enter_context(
                service_at(before, directory, models, list(MODELS))
            )
        for app in ("raw", "fastapi", "onnx"):
            env = {
                "BENCH_ANSWERS": str(answers_file),
                "BENCH_MODELS": str(models),
                "BENCH_APP": app,
            }
            url, process = stack.enter_context(
                uvicorn_server(directory / app, app=f"bench.reference_apps:{app}", env=env)
            )
            apps[app] = (url, process.pid)
        runs: dict[tuple[int, str], list[dict[str, float]]] = {}
        for app, (url, _) in apps.items():  # warm every app on every body it serves
            for key in scripts:
                if app != "onnx" or key.split("/")[0] not in UNCOMPILED:
                    wrk.run(f"{url}/predict", scripts[key], 4, 1)
        chosen = cells if cells is not None else range(len(CELLS))
        for _ in range(rounds):
            for cell in chosen:
                _, name, rows, connections = CELLS[cell]
                for app, (url, pid) in apps.items():
                    if app == "onnx" and name in UNCOMPILED:
                        continue
                    found = _measured(url, pid, scripts[f"{name}/{rows}"], connections)
                    runs.setdefault((cell, app), []).append(found)
    return _report(runs, list(apps), rounds)


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def _report(
    runs: dict[tuple[int, str], list[dict[str, float]]], apps: list[str], rounds: int
) -> dict[str, Any]:
    results: dict[str, Any] = {}
    rows = []
    for cell, (label, _, _, connections) in enumerate(CELLS):
        if (cell, "service") not in runs:
            continue
        cell_name = f"{label}, {connections} connection{'s' if connections > 1 else ''}"
        served = [app for app in apps if (cell, app) in runs]
        medians = {
            app: {
                key: _median(runs[cell, app], key)
                for key in ("per_second", "p50_ms", "p99_ms", "cpu_us")
            }
            for app in served
        }
        for app in served:
            rates = [run["per_second"] for run in runs[cell, app]]
            medians[app]["per_second_range"] = [min(rates), max(rates)]
        service = medians["service"]
        ratios = {
            "vs_raw": service["per_second"] / medians["raw"]["per_second"],
            "cpu_vs_raw": service["cpu_us"] / medians["raw"]["cpu_us"],
        }
        if "onnx" in medians:
            ratios["vs_onnx"] = service["per_second"] / medians["onnx"]["per_second"]
        if "previous" in medians:
            ratios["vs_previous"] = service["per_second"] / medians["previous"]["per_second"]
        if "before" in medians:
            before = medians["before"]
            ratios["before_vs_raw"] = before["per_second"] / medians["raw"]["per_second"]
            if "onnx" in medians:
                ratios["before_vs_onnx"] = before["per_second"] / medians["onnx"]["per_second"]
            ratios["vs_before"] = service["per_second"] / before["per_second"]
        results[cell_name] = {"apps": medians, "ratios": ratios}
        rate = service["per_second_range"]
        rows.append(
            [
                cell_name,
                f"{service['per_second']:.0f} ({rate[0]:.0f}-{rate[1]:.0f})",
                f"{service['p50_ms']:.2f} / {service['p99_ms']:.2f}",
                f"{service['cpu_us']:.0f}",
                *(
                    f"{medians[app]['per_second']:.0f}" if app in medians else "-"
                    for app in apps
                    if app != "service"
                ),
                f"{ratios['vs_raw']:.2f}x",
                f"{ratios['vs_onnx']:.2f}x" if "vs_onnx" in ratios else "-",
                f"{ratios['cpu_vs_raw']:.2f}x",
                f"{ratios['vs_previous']:.2f}x" if "vs_previous" in ratios else "-",
                *(
                    f"{ratios[key]:.2f}x" if key in ratios else "-"
                    for key in ("before_vs_raw", "before_vs_onnx", "vs_before")
                    if "before" in apps
                ),
            ]
        )
    others = [app for app in apps if app != "service"]
    show(
        f"Ceiling: req/s with wrk -t1 for {SECONDS} s, the same bytes to every app "
        f"(median of {rounds} alternated rounds; CPU: server µs per request)",
        [
            "cell",
            "service req/s (range)",
            "p50 / p99 ms",
            "CPU µs",
            *(f"{app} req/s" for app in others),
            "vs raw",
            "vs onnx",
            "CPU vs raw",
            "vs previous",
            *(["before vs raw", "before vs onnx", "vs before"] if "before" in apps else []),
        ],
        rows,
    )
    cpu_rows = [
        [
            name,
            *(f"{cell['apps'][app]['cpu_us']:.0f}" if app in cell["apps"] else "-" for app in apps),
        ]
        for name, cell in results.items()
    ]
    show("Server CPU µs per request (median)", ["cell", *apps], cpu_rows)
    return results


if __name__ == "__main__":
    import argparse

    options = argparse.ArgumentParser(description="the ceiling section of make bench alone")
    options.add_argument("--rounds", type=int, default=ROUNDS)
    options.add_argument("--cells", help="comma-separated indices into CELLS")
    options.add_argument("--before", help="a commit whose service is measured beside this one")
    chosen = options.parse_args()
    cells = tuple(int(i) for i in chosen.cells.split(",")) if chosen.cells else None
    with tempfile.TemporaryDirectory() as scratch:
        found = ceiling(Path(scratch), chosen.rounds, cells, chosen.before)
    if chosen.before:
        (Path(__file__).parent / "results" / "ceiling-before.json").write_text(json.dumps(found))
