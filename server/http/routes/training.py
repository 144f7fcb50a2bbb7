"""Training jobs: `POST /fit` (a job, waited for or not), the jobs, a job's live events, and
cancel."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.sse import ServerSentEvent

from server.http.dependencies import Service
from server.http.events import changes
from server.http.openapi_bodies import request_body
from server.http.routing import RouteTable
from server.ingest import read_fit
from server.monitoring import inputs as from_capture
from server.schemas import (
    FitForm,
    FitRequest,
    FitResponse,
    Job,
    JobList,
)
from server.training.jobs import Job as TrainingJob

table = RouteTable()


async def _existing_job(job_id: str, service: Service) -> TrainingJob:
    # A dependency, so that an unknown id is a 404 before an event stream starts.
    return service.job(job_id)


ExistingJob = Annotated[TrainingJob, Depends(_existing_job)]


@table.post(
    "/fit",
    FitResponse,
    access="management",
    errors=(404, 409, 413, 422, 500, 503),
    status_code=201,
    responses={202: {"model": Job, "description": "with wait=false: the job, started"}},
    openapi_extra=request_body(FitRequest, FitForm),
)
async def fit(
    request: Request,
    service: Service,
    wait: Annotated[
        bool, Query(description="true: answer once the model is saved; false: 202 at once")
    ] = True,
) -> Response:
    """Train a model and save it (or, with wait=false, start its job)."""
    limits = request.app.state.limits.fit
    fit_input = await read_fit(request, limits)
    if fit_input.config.from_capture is not None:  # the rows of the capture, labelled
        fit_input = await from_capture.fit_input(request.app.state.monitor, fit_input, limits)
    job = service.start_fit(fit_input)
    if wait:
        return Response(orjson.dumps(await service.wait(job)), 201, media_type="application/json")
    return JSONResponse(job.describe(), 202, headers={"Location": f"/jobs/{job.id}"})


@table.get("/jobs", JobList, access="inference")
async def jobs(service: Service) -> dict[str, Any]:
    """Running and recent jobs, newest first."""
    return {"jobs": [job.describe() for job in service.jobs()]}


@table.get("/jobs/{job_id}", Job, access="inference", errors=(404,))
async def job(job: ExistingJob) -> dict[str, Any]:
    """One job."""
    return job.describe()


@table.events("/jobs/{job_id}/events", access="inference", missing="no such job")
async def job_events(job: ExistingJob) -> AsyncIterator[ServerSentEvent]:
    """Live progress: an event per change, the last one with the finished job."""
    async for event in changes(job, lambda: job.state.value):
        yield event


@table.post("/jobs/{job_id}/cancel", Job, access="management", errors=(404, 409))
async def cancel_job(job_id: str, service: Service) -> dict[str, Any]:
    """Stop a running training: its slot is free and nothing of it is on disk."""
    return (await service.cancel(job_id)).describe()
