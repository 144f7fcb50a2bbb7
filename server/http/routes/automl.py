"""The AutoML routes: start a search, follow it (state, leaderboard, events), cancel it.
Starting and cancelling need the management token; reading, the inference token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from fastapi.sse import ServerSentEvent

from server.automl.runner import AutoML
from server.automl.search import Search
from server.errors import SearchNotFound
from server.http.events import changes
from server.http.openapi_bodies import request_body
from server.http.routing import RouteTable
from server.ingest import read_fit
from server.schemas import FitForm
from server.schemas.automl import AutoMLConfig, AutoMLList, AutoMLRequest, AutoMLSearch

table = RouteTable()


async def _automl(request: Request) -> AutoML:
    automl: AutoML = request.app.state.automl
    return automl


Searches = Annotated[AutoML, Depends(_automl)]


async def _existing(search_id: str, automl: Searches) -> Search:
    search = automl.search(search_id)
    if search is None:
        raise SearchNotFound(search_id)
    return search


ExistingSearch = Annotated[Search, Depends(_existing)]


@table.post(
    "/automl",
    AutoMLSearch,
    access="management",
    errors=(409, 413, 422),
    status_code=202,
    openapi_extra=request_body(AutoMLRequest, FitForm),
)
async def start_automl(request: Request, automl: Searches) -> JSONResponse:
    """Search for the best model for a table, on every free training slot."""
    search = automl.start(await read_fit(request, request.app.state.limits.fit, AutoMLConfig))
    return JSONResponse(search.describe(), 202, headers={"Location": f"/automl/{search.id}"})


@table.get("/automl", AutoMLList, access="inference")
async def searches(automl: Searches) -> dict[str, Any]:
    """Running and recent searches, newest first."""
    return {"searches": [search.describe() for search in automl.searches()]}


@table.get("/automl/{search_id}", AutoMLSearch, access="inference", errors=(404,))
async def search(search: ExistingSearch) -> dict[str, Any]:
    """One search: its state, progress and leaderboard."""
    return search.describe()


@table.events("/automl/{search_id}/events", access="inference", missing="no such search")
async def search_events(search: ExistingSearch) -> AsyncIterator[ServerSentEvent]:
    """Live leaderboard: an event per change, the last one with the finished search."""
    async for event in changes(search, lambda: search.state):
        yield event


@table.post("/automl/{search_id}/cancel", AutoMLSearch, access="management", errors=(404, 409))
async def cancel_search(search: ExistingSearch, automl: Searches) -> dict[str, Any]:
    """Stop every running candidate; nothing is saved."""
    await automl.cancel(search)
    return search.describe()
