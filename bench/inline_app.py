"""The comparison point for predictions: a plain FastAPI handler that calls `model.predict`
inline, on a model file saved by the server (BENCH_MODEL_FILE). Not part of the product."""

from __future__ import annotations

import os
from typing import Any

import joblib
import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel

bundle = joblib.load(os.environ["BENCH_MODEL_FILE"])
estimator = bundle["estimator"]
classes = np.asarray(bundle["classes"])
app = FastAPI()


class Config(BaseModel):
    name: str


class PredictRequest(BaseModel):
    X: list[list[float]]
    config: Config


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/predict")
async def predict(body: PredictRequest) -> dict[str, Any]:
    predictions = classes[estimator.predict(np.asarray(body.X))].tolist()
    return {"name": body.config.name, "predictions": predictions}
