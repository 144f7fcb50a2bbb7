"""The service itself: `/health`, `/metrics` (both open) and `/status`."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST

from server.errors import MetricsOff
from server.http.dependencies import CatalogOf
from server.http.routing import RouteTable
from server.metrics import Metrics, NoMetrics
from server.replication import report
from server.replication.follower import Follower
from server.schemas import (
    Health,
    ServiceStatus,
)

table = RouteTable()


@table.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}},
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics (open, like /health)."""
    metrics: Metrics = request.app.state.metrics
    if isinstance(metrics, NoMetrics):
        raise MetricsOff("metrics are off on this server (METRICS=false)")
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


@table.get(
    "/health",
    Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health, "description": "a replica that serves no set"}},
)
async def health(request: Request) -> Any:
    """Ready to serve; on a replica, how far behind the primary it is and what it can't
    follow, and 503 while it serves no set (it can't read one: a balancer sends it nothing)."""
    follower: Follower | None = getattr(request.app.state, "follower", None)
    if follower is None:
        return {"status": "ok"}
    answer = report.health(follower.state, request.app.state.settings.primary_url)
    return answer if follower.state.ready() else JSONResponse(answer, status_code=503)


# `scheduler` and `workers` only with dask
@table.get("/status", ServiceStatus, access="inference", response_model_exclude_unset=True)
async def status(catalog: CatalogOf) -> dict[str, Any]:
    """Capacity at a glance."""
    return catalog.status()
