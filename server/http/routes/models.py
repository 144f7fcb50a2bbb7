"""Models: the listings, and what loads, unloads and removes them."""

from __future__ import annotations

from typing import Any

from server.http.dependencies import CatalogOf, Service
from server.http.routing import RouteTable
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


@table.get("/models", ModelList, access="inference")
async def models(catalog: CatalogOf) -> dict[str, Any]:
    """Every model (its current version), sorted by name."""
    return {"models": catalog.models()}


@table.get("/models/{name}", ModelInfo, access="inference", errors=(404, 422))
async def model(name: ModelName, catalog: CatalogOf) -> dict[str, Any]:
    """One model: its current version, its pointers and every version."""
    return catalog.model(name)


@table.post("/load", StatusResponse, access="management", errors=(404, 409, 413, 422))
async def load(body: VersionedRequest, service: Service) -> dict[str, Any]:
    """Load a model."""
    config = body.config
    version = await service.load(config.name, config.version, config.alias)
    return {"name": config.name, "version": version, "status": "loaded"}


@table.post("/unload", StatusResponse, access="management", errors=(404, 413, 422))
async def unload(body: VersionedRequest, service: Service) -> dict[str, Any]:
    """Unload a model."""
    config = body.config
    version = await service.unload(config.name, config.version, config.alias)
    return {"name": config.name, "version": version, "status": "trained"}


@table.post("/remove", RemoveResponse, access="management", errors=(404, 409, 413, 422))
async def remove(body: NameRequest, service: Service) -> dict[str, Any]:
    """Delete one trained model."""
    await service.remove(body.config.name)
    return {"name": body.config.name, "removed": True}


@table.post("/remove_all", RemoveAllResponse, access="management", errors=(413,))
async def remove_all(service: Service) -> dict[str, list[str]]:
    """Delete every trained model."""
    return await service.remove_all()
