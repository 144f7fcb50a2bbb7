"""A model's versions and the pointers between them: list, delete, promote, roll back, set
and remove aliases, and the history of the moves."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from server.http.dependencies import CatalogOf, Service
from server.http.routing import RouteTable
from server.schemas import (
    History,
    ModelInfo,
    ModelName,
    VersionBody,
    VersionList,
    VersionPointers,
    VersionRemoved,
)

table = RouteTable()
VersionNumber = Annotated[int, Path(ge=1, le=2**31, description="a version of the name")]
AliasName = Annotated[str, Path(description="an alias of the name, e.g. staging")]


@table.get("/models/{name}/versions", VersionList, access="inference", errors=(404, 422))
async def versions(name: ModelName, catalog: CatalogOf) -> dict[str, Any]:
    """A model's versions, oldest first, with its pointers."""
    return catalog.versions(name)


@table.get(
    "/models/{name}/versions/{version}",
    ModelInfo,
    access="inference",
    errors=(404, 422),
    response_model_exclude_unset=True,
)
async def version(name: ModelName, version: VersionNumber, catalog: CatalogOf) -> dict[str, Any]:
    """One version of a model."""
    return catalog.version(name, version)


@table.delete(
    "/models/{name}/versions/{version}", VersionRemoved, access="management", errors=(404, 409, 422)
)
async def remove_version(
    name: ModelName, version: VersionNumber, service: Service
) -> dict[str, Any]:
    """Delete one version (not the current one, an aliased, loaded or training one)."""
    await service.remove_version(name, version)
    return {"name": name, "version": version, "removed": True}


@table.post(
    "/models/{name}/promote", VersionPointers, access="management", errors=(404, 409, 413, 422)
)
async def promote(name: ModelName, body: VersionBody, service: Service) -> dict[str, Any]:
    """Make a version current (a loaded current version is swapped without a failed request)."""
    return await service.versions.promote(name, body.version)


@table.post("/models/{name}/rollback", VersionPointers, access="management", errors=(404, 409, 422))
async def rollback(name: ModelName, service: Service) -> dict[str, Any]:
    """Make the version current before the last move current again."""
    return await service.versions.rollback(name)


@table.put(
    "/models/{name}/aliases/{alias}",
    VersionPointers,
    access="management",
    errors=(404, 409, 413, 422),
)
async def set_alias(
    name: ModelName, alias: AliasName, body: VersionBody, service: Service
) -> dict[str, Any]:
    """Point a named alias at a version."""
    return await service.versions.set_alias(name, alias, body.version)


@table.delete(
    "/models/{name}/aliases/{alias}", VersionPointers, access="management", errors=(404, 422)
)
async def remove_alias(name: ModelName, alias: AliasName, service: Service) -> dict[str, Any]:
    """Remove an alias."""
    return await service.versions.set_alias(name, alias, None)


@table.get("/models/{name}/history", History, access="inference", errors=(404, 422))
async def history(name: ModelName, service: Service) -> dict[str, Any]:
    """Every move of the current pointer and of each alias, oldest first."""
    return {"name": name, "history": service.versions.history(name)}
