"""A model's versions and the pointers between them: list, delete, promote, roll back, set
and remove aliases, and the history of the moves."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from server.http.dependencies import CatalogOf, Service
from server.http.routing import RouteTable, errors
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


@table.route(
    "GET",
    "/models/{name}/versions",
    access="inference",
    responses=errors(404, 422),
    response_model=VersionList,
    summary="A model's versions, oldest first, with its pointers",
)
async def versions(name: ModelName, catalog: CatalogOf) -> dict[str, Any]:
    return catalog.versions(name)


@table.route(
    "GET",
    "/models/{name}/versions/{version}",
    access="inference",
    responses=errors(404, 422),
    response_model=ModelInfo,
    response_model_exclude_unset=True,
    summary="One version of a model",
)
async def version(name: ModelName, version: VersionNumber, catalog: CatalogOf) -> dict[str, Any]:
    return catalog.version(name, version)


@table.route(
    "DELETE",
    "/models/{name}/versions/{version}",
    access="management",
    responses=errors(404, 409, 422),
    response_model=VersionRemoved,
    summary="Delete one version (not the current one, an aliased, loaded or training one)",
)
async def remove_version(
    name: ModelName, version: VersionNumber, service: Service
) -> dict[str, Any]:
    await service.remove_version(name, version)
    return {"name": name, "version": version, "removed": True}


@table.route(
    "POST",
    "/models/{name}/promote",
    access="management",
    responses=errors(404, 409, 413, 422),
    response_model=VersionPointers,
    summary="Make a version current (a loaded current version is swapped without a failed request)",
)
async def promote(name: ModelName, body: VersionBody, service: Service) -> dict[str, Any]:
    return await service.versions.promote(name, body.version)


@table.route(
    "POST",
    "/models/{name}/rollback",
    access="management",
    responses=errors(404, 409, 422),
    response_model=VersionPointers,
    summary="Make the version current before the last move current again",
)
async def rollback(name: ModelName, service: Service) -> dict[str, Any]:
    return await service.versions.rollback(name)


@table.route(
    "PUT",
    "/models/{name}/aliases/{alias}",
    access="management",
    responses=errors(404, 409, 413, 422),
    response_model=VersionPointers,
    summary="Point a named alias at a version",
)
async def set_alias(
    name: ModelName, alias: AliasName, body: VersionBody, service: Service
) -> dict[str, Any]:
    return await service.versions.set_alias(name, alias, body.version)


@table.route(
    "DELETE",
    "/models/{name}/aliases/{alias}",
    access="management",
    responses=errors(404, 422),
    response_model=VersionPointers,
    summary="Remove an alias",
)
async def remove_alias(name: ModelName, alias: AliasName, service: Service) -> dict[str, Any]:
    return await service.versions.set_alias(name, alias, None)


@table.route(
    "GET",
    "/models/{name}/history",
    access="inference",
    responses=errors(404, 422),
    response_model=History,
    summary="Every move of the current pointer and of each alias, oldest first",
)
async def history(name: ModelName, service: Service) -> dict[str, Any]:
    return {"name": name, "history": service.versions.history(name)}
