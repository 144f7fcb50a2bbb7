"""The service itself: `/health`, `/metrics` (both open) and `/status`."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.errors import MetricsOff
from server.http.dependencies import CatalogOf
from server.http.routing import RouteTable
from server.metrics import Metrics, NoMetrics
from server.schemas import (
    Health,
    ServiceStatus,
)

table = RouteTable()


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
        raise MetricsOff("metrics are off on this server (METRICS=false)")
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@table.route("GET", "/health", response_model=Health, summary="Liveness")
async def health() -> dict[str, str]:
    return {"status": "ok"}


@table.route(
    "GET",
    "/status",
    access="inference",
    response_model=ServiceStatus,
    response_model_exclude_unset=True,  # `scheduler` and `workers` only with dask
    summary="Capacity at a glance",
)
async def status(catalog: CatalogOf) -> dict[str, Any]:
    return catalog.status()
