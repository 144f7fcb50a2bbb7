"""Predictions, scores and explanations of a loaded model: `POST /predict` (JSON, or CSV
with `Accept: text/csv`), `POST /evaluate` and `POST /explain`. They read their bodies
themselves (server.ingest)."""

from __future__ import annotations

import asyncio

import orjson
from fastapi import Request
from fastapi.responses import Response

from server.http.csv_response import CSV, predictions_csv, wants_csv
from server.http.dependencies import ExplanationsOf, Service
from server.http.disconnect import unless_disconnected
from server.http.openapi_bodies import request_body
from server.http.request_ids import id_of
from server.http.routing import RouteTable
from server.ingest import read_evaluate, read_explain, read_predict
from server.monitoring import inputs as from_capture
from server.schemas import (
    EvaluateForm,
    EvaluateRequest,
    EvaluateResponse,
    ExplainForm,
    ExplainRequest,
    ExplainResponse,
    PredictForm,
    PredictRequest,
    PredictResponse,
)

table = RouteTable()


@table.post(
    "/predict",
    PredictResponse,
    access="inference",
    errors=(404, 409, 413, 422),
    response_model_exclude_none=True,
    openapi_extra={
        **request_body(PredictRequest, PredictForm),
        "responses": {"200": {"content": {CSV: {"schema": {"type": "string"}}}}},
    },
)
async def predict(request: Request, service: Service) -> Response:
    """Predict with a loaded model (JSON, or CSV with Accept: text/csv)."""
    rid = id_of(request.scope) or ""
    answer = await service.predict(
        await read_predict(request, request.app.state.limits.predict), rid
    )
    if wants_csv(request):
        return predictions_csv(answer)
    answer["request_id"] = rid
    # orjson, and no second validation of what we built: a 100k-row answer is one dumps.
    return Response(orjson.dumps(answer), media_type="application/json")


@table.post(
    "/evaluate",
    EvaluateResponse,
    access="inference",
    errors=(404, 409, 413, 422),
    openapi_extra=request_body(EvaluateRequest, EvaluateForm),
)
async def evaluate(request: Request, service: Service) -> Response:
    """Score a loaded model on labelled rows."""
    limits = request.app.state.limits.predict
    rows = await read_evaluate(request, limits)
    source, left_out = rows.config.from_capture, None
    if source is not None:  # the rows of the capture, labelled, less those it trained on
        config = rows.config
        version = service.loaded(config.name, config.version, config.alias).model.version
        metadata = await asyncio.to_thread(service.store.read_metadata, config.name, version)
        trained = from_capture.trained_window(metadata, source.name)
        monitor = request.app.state.monitor
        rows, left_out = await from_capture.evaluate_input(monitor, rows, limits, trained)
    answer = await service.evaluate(rows)
    if left_out is not None:
        answer["left_out_trained_rows"] = left_out
    return Response(orjson.dumps(answer), media_type="application/json")


@table.post(
    "/explain",
    ExplainResponse,
    access="inference",
    errors=(404, 409, 413, 422, 500, 503),
    openapi_extra=request_body(ExplainRequest, ExplainForm),
)
async def explain(request: Request, explanations: ExplanationsOf) -> Response:
    """Explain a loaded model's answers: each feature's contribution (SHAP values)."""
    rows = await read_explain(request, request.app.state.limits.explain)
    answer = await unless_disconnected(request, explanations.explain(rows))
    return Response(answer, media_type="application/json")
