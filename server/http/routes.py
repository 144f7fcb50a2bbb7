"""The HTTP routes: each one translates a request into one ModelService call.

/fit and /predict read their bodies themselves (server.ingest: orjson and numpy, several
times faster than pydantic on big matrices); OpenAPI still documents them from the models.

Each route is declared with the access it needs (server.http.routing installs it on an app,
with its bearer guard only when a token is set)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import CONTENT_TYPE_LATEST

from server.http.csv_response import CSV, predictions_csv, wants_csv
from server.http.dependencies import Service
from server.http.events import changes
from server.http.openapi_bodies import request_body
from server.http.routing import RouteTable, errors, json_error
from server.ingest import read_evaluate, read_fit, read_predict
from server.metrics import Metrics, NoMetrics
from server.schemas import (
    EvaluateForm,
    EvaluateRequest,
    EvaluateResponse,
    FitForm,
    FitRequest,
    FitResponse,
    Health,
    Job,
    JobList,
    NameRequest,
    PredictForm,
    PredictRequest,
    PredictResponse,
    RemoveAllResponse,
    RemoveResponse,
    StatusResponse,
    VersionedRequest,
)
from server.training.jobs import Job as TrainingJob

table = RouteTable()


async def _existing_job(job_id: str, service: Service) -> TrainingJob:
    # A dependency, so that an unknown id is a 404 before an event stream starts.
    return service.job(job_id)


ExistingJob = Annotated[TrainingJob, Depends(_existing_job)]


@table.route(
    "POST",
    "/fit",
    access="management",
    status_code=201,
    response_model=FitResponse,
    responses={
        202: {"model": Job, "description": "with wait=false: the job, started"},
        **errors(409, 413, 422, 500, 503),
    },
    summary="Train a model and save it (or, with wait=false, start its job)",
    openapi_extra=request_body(FitRequest, FitForm),
)
async def fit(
    request: Request,
    service: Service,
    wait: Annotated[
        bool, Query(description="true: answer once the model is saved; false: 202 at once")
    ] = True,
) -> Response:
    job = service.start_fit(await read_fit(request, request.app.state.limits.fit))
    if wait:
        return Response(orjson.dumps(await service.wait(job)), 201, media_type="application/json")
    return JSONResponse(job.describe(), 202, headers={"Location": f"/jobs/{job.id}"})


@table.route(
    "GET",
    "/jobs",
    access="inference",
    response_model=JobList,
    summary="Running and recent jobs, newest first",
)
async def jobs(service: Service) -> dict[str, Any]:
    return {"jobs": [job.describe() for job in service.jobs()]}


@table.route(
    "GET",
    "/jobs/{job_id}",
    access="inference",
    responses=errors(404),
    response_model=Job,
    summary="One job",
)
async def job(job: ExistingJob) -> dict[str, Any]:
    return job.describe()


@table.route(
    "GET",
    "/jobs/{job_id}/events",
    access="inference",
    response_class=EventSourceResponse,
    # The route's media type would otherwise be claimed for its JSON 404 too.
    responses={404: json_error("no such job")},
    summary="Live progress: an event per change, the last one with the finished job",
)
async def job_events(job: ExistingJob) -> AsyncIterator[ServerSentEvent]:
    async for event in changes(job, lambda: job.state.value):
        yield event


@table.route(
    "POST",
    "/jobs/{job_id}/cancel",
    access="management",
    responses=errors(404, 409),
    response_model=Job,
    summary="Stop a running training: its slot is free and nothing of it is on disk",
)
async def cancel_job(job_id: str, service: Service) -> dict[str, Any]:
    return (await service.cancel(job_id)).describe()


@table.route(
    "POST",
    "/predict",
    access="inference",
    responses=errors(404, 409, 413, 422),
    response_model=PredictResponse,
    response_model_exclude_none=True,
    summary="Predict with a loaded model (JSON, or CSV with Accept: text/csv)",
    openapi_extra={
        **request_body(PredictRequest, PredictForm),
        "responses": {"200": {"content": {CSV: {"schema": {"type": "string"}}}}},
    },
)
async def predict(request: Request, service: Service) -> Response:
    answer = await service.predict(await read_predict(request, request.app.state.limits.predict))
    if wants_csv(request):
        return predictions_csv(answer)
    # orjson, and no second validation of what we built: a 100k-row answer is one dumps.
    return Response(orjson.dumps(answer), media_type="application/json")


@table.route(
    "POST",
    "/evaluate",
    access="inference",
    responses=errors(404, 409, 413, 422),
    response_model=EvaluateResponse,
    summary="Score a loaded model on labelled rows",
    openapi_extra=request_body(EvaluateRequest, EvaluateForm),
)
async def evaluate(request: Request, service: Service) -> Response:
    answer = await service.evaluate(await read_evaluate(request, request.app.state.limits.predict))
    return Response(orjson.dumps(answer), media_type="application/json")


@table.route(
    "POST",
    "/load",
    access="management",
    responses=errors(404, 409, 413, 422),
    response_model=StatusResponse,
    summary="Load a model",
)
async def load(body: VersionedRequest, service: Service) -> dict[str, Any]:
    config = body.config
    version = await service.load(config.name, config.version, config.alias)
    return {"name": config.name, "version": version, "status": "loaded"}


@table.route(
    "POST",
    "/unload",
    access="management",
    responses=errors(404, 413, 422),
    response_model=StatusResponse,
    summary="Unload a model",
)
async def unload(body: VersionedRequest, service: Service) -> dict[str, Any]:
    config = body.config
    version = await service.unload(config.name, config.version, config.alias)
    return {"name": config.name, "version": version, "status": "trained"}


@table.route(
    "POST",
    "/remove",
    access="management",
    responses=errors(404, 409, 413, 422),
    response_model=RemoveResponse,
    summary="Delete one trained model",
)
async def remove(body: NameRequest, service: Service) -> dict[str, Any]:
    await service.remove(body.config.name)
    return {"name": body.config.name, "removed": True}


@table.route(
    "POST",
    "/remove_all",
    access="management",
    responses=errors(413),
    response_model=RemoveAllResponse,
    summary="Delete every trained model",
)
async def remove_all(service: Service) -> dict[str, list[str]]:
    return await service.remove_all()


@table.route(
    "GET",
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
    summary="Prometheus metrics (open, like /health)",
)
async def metrics(request: Request) -> Response:
    metrics: Metrics = request.app.state.metrics
    if isinstance(metrics, NoMetrics):
        raise HTTPException(404, "metrics are off on this server (METRICS=false)")
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@table.route("GET", "/health", response_model=Health, summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}
