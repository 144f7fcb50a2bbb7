"""Models: the listings, and what loads, unloads and removes them."""

from __future__ import annotations

from typing import Any

from server.http.dependencies import CatalogOf, Service
from server.http.routing import RouteTable, errors
from server.schemas import (
    ModelInfo,
    ModelList,
    ModelName,
    NameRequest,
    RemoveAllResponse,
    RemoveResponse,
    StatusResponse,
    VersionedRequest,
)

table = RouteTable()


@table.route(
    "GET",
    "/models",
    access="inference",
    response_model=ModelList,
    summary="Every model (its current version), sorted by name",
)
async def models(catalog: CatalogOf) -> dict[str, Any]:
    return {"models": catalog.models()}


@table.route(
    "GET",
    "/models/{name}",
    access="inference",
    responses=errors(404, 422),
    response_model=ModelInfo,
    summary="One model: its current version, its pointers and every version",
)
async def model(name: ModelName, catalog: CatalogOf) -> dict[str, Any]:
    return catalog.model(name)


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
