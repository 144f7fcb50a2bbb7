#!/usr/bin/env bash
# Against `TRAINING_BACKEND=dask docker compose --profile dask up`: the server trains on the
# cluster (two one-thread workers), and the model then loads and predicts in the server.
#   COMPOSE_PROFILES=dask TRAINING_BACKEND=dask bash scripts/container-check.sh
set -euo pipefail
URL=${URL:-http://127.0.0.1:8000}
PYTHON=${PYTHON:-.venv/bin/python}
"$PYTHON" - "$URL" <<'PY'
import sys, time
from client import ModelClient

url = sys.argv[1]
with ModelClient(url) as server:
    deadline = time.monotonic() + 120
    while (status := server.status()["training"])["slots"] < 2:  # the workers are starting
        assert time.monotonic() < deadline, f"the cluster never had 2 slots: {status}"
        time.sleep(1)
    assert status["backend"] == "dask", status
    print(f"backend: {status['backend']} at {status['scheduler']}, {status['slots']} slots")
    X = [[float(i % 7), float(i % 3)] for i in range(200)]
    y = ["a" if i % 7 > 3 else "b" for i in range(200)]
    if any(m["name"] == "dask-check" for m in server.models()["models"]):
        server.remove("dask-check")
    job = server.fit("dask-check", "XGBClassifier", X, y, {"n_estimators": 50}, wait=False)
    model = server.wait(job)
    print(f"trained on the cluster in {model['train_seconds']:.2f} s")
    server.load("dask-check")
    print("predicted:", server.predict("dask-check", X[:4])["predictions"])
    server.remove("dask-check")
PY
echo "dask compose check: OK"
