"""What routes take from the app: the service and its catalog, built in the lifespan."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from server.explain.explanations import Explanations
from server.monitoring.monitor import Monitor
from server.service.catalog import Catalog
from server.service.operations import ModelService


# async: FastAPI runs a plain `def` dependency in a thread pool, a hop per request.
async def _service(request: Request) -> ModelService:
    service: ModelService = request.app.state.service
    return service


async def _catalog(request: Request) -> Catalog:
    catalog: Catalog = request.app.state.catalog
    return catalog


async def _explanations(request: Request) -> Explanations:
    explanations: Explanations = request.app.state.explanations
    return explanations


async def _monitor(request: Request) -> Monitor:
    monitor: Monitor = request.app.state.monitor
    return monitor


Service = Annotated[ModelService, Depends(_service)]
CatalogOf = Annotated[Catalog, Depends(_catalog)]
ExplanationsOf = Annotated[Explanations, Depends(_explanations)]
MonitorOf = Annotated[Monitor, Depends(_monitor)]
