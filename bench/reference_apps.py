"""The ceiling's three reference apps (bench/ceiling.py), each served by uvicorn as the service is.
Not part of the product.

- `raw`: a bare Starlette route that parses the body with orjson and answers a constant;
- `fastapi`: the same in a FastAPI route;
- `onnx`: the ten lines a user would write: FastAPI, orjson, ONNX Runtime called inline on
  the model's compiled copy that the service saved.

The constants are the service's own answers to the same bodies (BENCH_ANSWERS: a JSON file,
model name -> answer), so every app sends the same bytes. BENCH_MODELS: the service's models
directory, for `onnx`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
import orjson
from fastapi import FastAPI
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from devtools.saved import saved_bundle

ANSWERS: dict[str, bytes] = {
    name: orjson.dumps(answer)
    for name, answer in json.loads(Path(os.environ["BENCH_ANSWERS"]).read_text()).items()
}


async def _constant(request: Request) -> Response:
    body = orjson.loads(await request.body())
    return Response(ANSWERS[body["config"]["name"]], media_type="application/json")


raw = Starlette(routes=[Route("/predict", _constant, methods=["POST"])])
raw.add_route("/health", lambda request: Response(b"ok"))

fastapi = FastAPI()
fastapi.post("/predict")(_constant)
fastapi.get("/health")(lambda: "ok")


def _sessions() -> dict[str, tuple[onnxruntime.InferenceSession, Any, np.ndarray]]:
    sessions = {}
    for name in ANSWERS:
        bundle = saved_bundle(Path(os.environ["BENCH_MODELS"]), name)
        if bundle.get("onnx") is None:  # LightGBM: no ONNX copy to serve
            continue
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # as the service: one core serves
        session = onnxruntime.InferenceSession(bundle["onnx"], options)
        dtype = np.float64 if session.get_inputs()[0].type == "tensor(double)" else np.float32
        sessions[name] = (session, dtype, np.asarray(bundle["classes"]))
    return sessions


onnx = FastAPI()
onnx.get("/health")(lambda: "ok")
SESSIONS = _sessions() if os.environ.get("BENCH_APP") == "onnx" else {}


@onnx.post("/predict")
async def _onnx_predict(request: Request) -> Response:
    body = orjson.loads(await request.body())
    session, dtype, classes = SESSIONS[body["config"]["name"]]
    (labels, *_) = session.run(None, {session.get_inputs()[0].name: np.asarray(body["X"], dtype)})
    answer = {"name": body["config"]["name"], "predictions": classes[labels].tolist()}
    return Response(orjson.dumps(answer), media_type="application/json")
