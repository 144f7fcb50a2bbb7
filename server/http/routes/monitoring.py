"""Monitoring (docs/monitoring.md): a name's capture setting, its report, feedback, and its
captured rows exported or erased."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response

from server.errors import InvalidInput
from server.http.csv_response import CSV, wants_csv
from server.http.dependencies import MonitorOf
from server.http.openapi_bodies import request_body
from server.http.routing import RouteTable
from server.ingest import multipart
from server.ingest.features import TableFeatures
from server.ingest.json_body import parse_body
from server.monitoring.feedback import Labels
from server.monitoring.windows import window
from server.schemas import (
    CaptureRequest,
    CaptureSettingResponse,
    ErasedResponse,
    FeedbackForm,
    FeedbackRequest,
    FeedbackResponse,
    ModelName,
    MonitoringReport,
)
from server.schemas.requests import Body
from server.tables.keys import key_of

table = RouteTable()
Since = Annotated[datetime | None, Query(description="ISO time; default: until - 24 hours")]
Until = Annotated[datetime | None, Query(description="ISO time; default: now")]
PARQUET = "application/vnd.apache.parquet"


class FeedbackConfig(Body):
    key: str


@table.put(
    "/models/{name}/monitoring",
    CaptureSettingResponse,
    access="management",
    errors=(404, 409, 422),
    response_model_exclude_none=True,
)
async def set_capture(name: ModelName, body: CaptureRequest, monitor: MonitorOf) -> dict[str, Any]:
    """Turn capture on or off for a name (kept in the store; replicas follow)."""
    await monitor.change(name, body.capture, body.sample_rate, body.capture_exclude)
    return monitor.describe(name)


@table.get(
    "/models/{name}/monitoring", MonitoringReport, access="inference", errors=(404, 409, 422)
)
async def report(
    name: ModelName, monitor: MonitorOf, since: Since = None, until: Until = None
) -> dict[str, Any]:
    """Captured, dropped and labelled rows, live scores and drift per version, over a window."""
    return await monitor.report(name, window(since, until))


@table.post(
    "/models/{name}/feedback",
    FeedbackResponse,
    access="inference",
    errors=(404, 409, 413, 422),
    openapi_extra=request_body(FeedbackRequest, FeedbackForm),
)
async def give_feedback(name: ModelName, request: Request, monitor: MonitorOf) -> dict[str, Any]:
    """The true labels of captured rows: by request id, by key, or a CSV/Parquet file."""
    limits = request.app.state.limits.fit
    if multipart.is_multipart(request):
        config, features, y = await multipart.read_labelled(request, FeedbackConfig, limits)
        found = TableFeatures(features).key_values(config.key)
        if None in found:
            raise InvalidInput(f"the key column {config.key!r} has empty cells")
        labels = Labels(y, keys=found)  # type: ignore[arg-type]
    else:
        body = parse_body(FeedbackRequest, await request.body())
        keys = None if body.keys is None else [key_of(key) or key for key in body.keys]
        labels = Labels(list(body.y), request_id=body.request_id, keys=keys)
    limits.check_rows(len(labels.y))
    return await monitor.feedback(name, labels)


@table.get(
    "/models/{name}/monitoring/rows",
    None,
    access="management",
    errors=(404, 422),
    responses={200: {"content": {PARQUET: {}, CSV: {"schema": {"type": "string"}}}}},
)
async def export(
    name: ModelName, request: Request, monitor: MonitorOf, since: Since = None, until: Until = None
) -> Response:
    """The captured rows of a window with their labels: Parquet, or CSV with Accept: text/csv."""
    csv = wants_csv(request)
    data = await monitor.export(name, window(since, until), csv)
    return Response(data, media_type=CSV if csv else PARQUET)


@table.delete(
    "/models/{name}/monitoring/rows", ErasedResponse, access="management", errors=(404, 422)
)
async def erase(
    name: ModelName,
    monitor: MonitorOf,
    key: Annotated[str, Query(min_length=1, description="the key whose rows and labels go")],
) -> dict[str, Any]:
    """Erase the captured rows and labels of one key (a person who asks to be forgotten)."""
    return await monitor.erase_key(name, key)
