"""The HTTP routes: each one translates a request into one ModelService call.

/fit and /predict read their bodies themselves (server.ingest: orjson and numpy, several
times faster than pydantic on big matrices); OpenAPI still documents them from the models.

Routes are declared once here with the access they need (`management`, `inference`, or open)
and installed on each app by `install_routes`: with a token set, a guarded route gets its
bearer guard (and its 401/403 in OpenAPI); with none, it gets no guard at all, because even a
guard that lets everything through costs FastAPI a dependency per request (~25 us of a
~210 us 1-row predict, measured)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import orjson
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import HTTPException
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel

from server.http.auth import GUARDS
from server.ingest import read_fit, read_predict
from server.metrics import Metrics, NoMetrics
from server.schemas import (
    ErrorResponse,
    FitRequest,
    FitResponse,
    Health,
    InvalidResponse,
    Job,
    JobList,
    ModelInfo,
    ModelList,
    ModelName,
    NameRequest,
    PredictRequest,
    PredictResponse,
    RemoveAllResponse,
    RemoveResponse,
    ServiceStatus,
    StatusResponse,
)
from server.service import ModelService
from server.training.jobs import Job as TrainingJob


async def _service(request: Request) -> ModelService:
    # async: FastAPI runs a plain `def` dependency in a thread pool, a hop per request.
    service: ModelService = request.app.state.service
    return service


Service = Annotated[ModelService, Depends(_service)]


async def _existing_job(job_id: str, service: Service) -> TrainingJob:
    # A dependency, so that an unknown id is a 404 before an event stream starts.
    return service.job(job_id)


ExistingJob = Annotated[TrainingJob, Depends(_existing_job)]


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": InvalidResponse if status == 422 else ErrorResponse}
        for status in statuses
    }


def _json_error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorResponse"}  # defined by the other routes
    return {"description": description, "content": {"application/json": {"schema": schema}}}


Access = Literal["management", "inference"]
# What a guard adds to a route's OpenAPI: JSON even where the route streams events.
GUARD_RESPONSES: dict[Access, dict[int | str, dict[str, Any]]] = {
    "management": {
        401: _json_error("no valid bearer token"),
        403: _json_error("the inference token on a management endpoint"),
    },
    "inference": {401: _json_error("no valid bearer token")},
}


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    endpoint: Callable[..., Any]
    access: Access | None  # None: open to everyone, always
    options: dict[str, Any]  # for FastAPI's add_api_route


ROUTES: list[RouteSpec] = []


def route(
    method: str, path: str, access: Access | None = None, **options: Any
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Declare a route (FastAPI's options) and the access it needs; `install_routes` adds it."""

    def register(endpoint: Callable[..., Any]) -> Callable[..., Any]:
        ROUTES.append(RouteSpec(method, path, endpoint, access, options))
        return endpoint

    return register


def request_body(model: type[BaseModel]) -> dict[str, Any]:
    """The OpenAPI request body of a route that parses its own body (server.ingest): the
    model's JSON schema, with its $defs inlined so that it stands alone."""
    schema = model.model_json_schema()
    definitions = schema.pop("$defs", {})

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            if "$ref" in node:
                return inline(definitions[node["$ref"].rsplit("/", 1)[-1]])
            return {key: inline(value) for key, value in node.items()}
        if isinstance(node, list):
            return [inline(item) for item in node]
        return node

    content = {"application/json": {"schema": inline(schema)}}
    return {"requestBody": {"required": True, "content": content}}


@route(
    "POST",
    "/fit",
    access="management",
    status_code=201,
    response_model=FitResponse,
    responses={
        202: {"model": Job, "description": "with wait=false: the job, started"},
        **_errors(409, 413, 422, 500, 503),
    },
    summary="Train a model and save it (or, with wait=false, start its job)",
    openapi_extra=request_body(FitRequest),
)
async def fit(
    request: Request,
    service: Service,
    wait: Annotated[
        bool, Query(description="true: answer once the model is saved; false: 202 at once")
    ] = True,
) -> Response:
    job = service.start_fit(await read_fit(request))
    if wait:
        return Response(orjson.dumps(await service.wait(job)), 201, media_type="application/json")
    return JSONResponse(job.describe(), 202, headers={"Location": f"/jobs/{job.id}"})


@route(
    "GET",
    "/jobs",
    access="inference",
    response_model=JobList,
    summary="Running and recent jobs, newest first",
)
async def jobs(service: Service) -> dict[str, Any]:
    return {"jobs": [job.describe() for job in service.jobs()]}


@route(
    "GET",
    "/jobs/{job_id}",
    access="inference",
    responses=_errors(404),
    response_model=Job,
    summary="One job",
)
async def job(job: ExistingJob) -> dict[str, Any]:
    return job.describe()


@route(
    "GET",
    "/jobs/{job_id}/events",
    access="inference",
    response_class=EventSourceResponse,
    # The route's media type would otherwise be claimed for its JSON 404 too.
    responses={404: _json_error("no such job")},
    summary="Live progress: an event per change, the last one with the finished job",
)
async def job_events(job: ExistingJob) -> AsyncIterator[ServerSentEvent]:
    # FastAPI sends a keep-alive comment every 15 s while nothing changes.
    seen = -1
    while True:
        if job.version != seen:
            seen = job.version
            yield ServerSentEvent(data=job.describe(), event=job.state.value, id=str(seen))
            if job.finished:
                return
        await job.next_change(seen)


@route(
    "POST",
    "/jobs/{job_id}/cancel",
    access="management",
    responses=_errors(404, 409),
    response_model=Job,
    summary="Stop a running training: its slot is free and nothing of it is on disk",
)
async def cancel_job(job_id: str, service: Service) -> dict[str, Any]:
    return (await service.cancel(job_id)).describe()


@route(
    "POST",
    "/predict",
    access="inference",
    responses=_errors(404, 409, 413, 422),
    response_model=PredictResponse,
    response_model_exclude_none=True,
    summary="Predict with a loaded model",
    openapi_extra=request_body(PredictRequest),
)
async def predict(request: Request, service: Service) -> Response:
    body = await read_predict(request)
    answer = await service.predict(body.config.name, body.X, body.config.probabilities)
    # orjson, and no second validation of what we built: a 100k-row answer is one dumps.
    return Response(orjson.dumps(answer), media_type="application/json")


@route(
    "POST",
    "/load",
    access="management",
    responses=_errors(404, 409, 413, 422),
    response_model=StatusResponse,
    summary="Load a model",
)
async def load(body: NameRequest, service: Service) -> dict[str, str]:
    await service.load(body.config.name)
    return {"name": body.config.name, "status": "loaded"}


@route(
    "POST",
    "/unload",
    access="management",
    responses=_errors(404, 413, 422),
    response_model=StatusResponse,
    summary="Unload a model",
)
async def unload(body: NameRequest, service: Service) -> dict[str, str]:
    await service.unload(body.config.name)
    return {"name": body.config.name, "status": "trained"}


@route(
    "POST",
    "/remove",
    access="management",
    responses=_errors(404, 409, 413, 422),
    response_model=RemoveResponse,
    summary="Delete one trained model",
)
async def remove(body: NameRequest, service: Service) -> dict[str, Any]:
    await service.remove(body.config.name)
    return {"name": body.config.name, "removed": True}


@route(
    "POST",
    "/remove_all",
    access="management",
    responses=_errors(413),
    response_model=RemoveAllResponse,
    summary="Delete every trained model",
)
async def remove_all(service: Service) -> dict[str, list[str]]:
    return await service.remove_all()


@route(
    "GET",
    "/models",
    access="inference",
    response_model=ModelList,
    summary="Every model, sorted by name",
)
async def models(service: Service) -> dict[str, Any]:
    return {"models": service.models()}


@route(
    "GET",
    "/models/{name}",
    access="inference",
    responses=_errors(404, 422),
    response_model=ModelInfo,
    summary="One model",
)
async def model(name: ModelName, service: Service) -> dict[str, Any]:
    return service.model(name)


@route(
    "GET",
    "/status",
    access="inference",
    response_model=ServiceStatus,
    response_model_exclude_unset=True,  # `scheduler` and `workers` only with dask
    summary="Capacity at a glance",
)
async def status(service: Service) -> dict[str, Any]:
    return service.status()


@route(
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


@route("GET", "/health", response_model=Health, summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


def install_routes(app: FastAPI, guarded: bool) -> None:
    """Add every route to the app's own router (`include_router` would put them behind a
    router of their own: a second round of matching, ~20 us a request on FastAPI 0.165).
    With `guarded`, the routes that need access get their bearer guard."""
    for spec in ROUTES:
        options = dict(spec.options)
        responses = dict(options.pop("responses", {}))
        dependencies = []
        if guarded and spec.access is not None:
            dependencies = [Depends(GUARDS[spec.access])]
            responses.update(GUARD_RESPONSES[spec.access])
        app.router.add_api_route(
            spec.path,
            spec.endpoint,
            methods=[spec.method],
            dependencies=dependencies,
            responses=responses,
            **options,
        )
