"""How routes are declared and put on an app.

A route is declared once, `@table.get(path, Model, access=..., errors=(404, 422))` (or
`post`, `put`, `delete`, with FastAPI's options), with the access it needs: `management`,
`inference`, or open. Its docstring's first line is its summary in OpenAPI.
`RouteTable.install` adds them to an app: with a token set, a guarded route gets its bearer
guard (and its 401/403 in OpenAPI); with none, it gets no guard at all, because even a guard
that lets everything through costs FastAPI a dependency per request (see the performance
page, Figures behind the code).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Literal

from fastapi import Depends, FastAPI, Request
from fastapi.sse import EventSourceResponse

from server.errors import ReplicaReadOnly
from server.http.auth import GUARDS
from server.schemas import ErrorResponse, InvalidResponse


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {"model": InvalidResponse if status == 422 else ErrorResponse}
        for status in statuses
    }


def json_error(description: str) -> dict[str, Any]:
    schema = {"$ref": "#/components/schemas/ErrorResponse"}  # defined by the other routes
    return {"description": description, "content": {"application/json": {"schema": schema}}}


Access = Literal["management", "inference"]
# What a guard adds to a route's OpenAPI: JSON even where the route streams events.
GUARD_RESPONSES: dict[Access, dict[int | str, dict[str, Any]]] = {
    "management": {
        401: json_error("no valid bearer token"),
        403: json_error("the inference token on a management endpoint"),
    },
    "inference": {401: json_error("no valid bearer token")},
}


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    endpoint: Callable[..., Any]
    access: Access | None  # None: open to everyone, always
    options: dict[str, Any]  # for FastAPI's add_api_route
    description: str  # the docstring after its first line


Endpoint = Callable[..., Any]


async def refuse_on_replica(request: Request) -> None:
    """Every management route writes (the store, the pointers, what is loaded): a replica
    refuses them all, naming where they go."""
    raise ReplicaReadOnly(request.app.state.settings.primary_url)


async def answer_once_published(request: Request) -> AsyncIterator[None]:
    """On a primary, a management call answers once the serving set holds what it changed:
    from its answer on, the replicas have REPLICA_SYNC_SECONDS to follow."""
    yield
    publisher = getattr(request.app.state, "publisher", None)
    if publisher is not None:
        await publisher.settled()


class RouteTable:
    """The routes of a module: declared with `@table.route(...)`, put on an app by `install`."""

    def __init__(self) -> None:
        self.specs: list[RouteSpec] = []

    def route(
        self,
        method: str,
        path: str,
        response_model: Any = None,
        *,
        access: Access | None = None,
        errors: tuple[int, ...] = (),
        **options: Any,
    ) -> Callable[[Endpoint], Endpoint]:
        """Declare a route: its answer's model, the access it needs, the error statuses it
        documents, and any other option of FastAPI's."""

        def register(endpoint: Endpoint) -> Endpoint:
            summary, _, description = inspect.cleandoc(endpoint.__doc__ or "").partition("\n")
            options.setdefault("summary", summary.rstrip("."))
            if response_model is not None:
                options["response_model"] = response_model
            options["responses"] = {**error_responses(*errors), **options.get("responses", {})}
            spec = RouteSpec(method, path, endpoint, access, options, description.strip())
            self.specs.append(spec)
            return endpoint

        return register

    def get(self, path: str, response_model: Any = None, **options: Any) -> Callable[..., Any]:
        return self.route("GET", path, response_model, **options)

    def post(self, path: str, response_model: Any = None, **options: Any) -> Callable[..., Any]:
        return self.route("POST", path, response_model, **options)

    def put(self, path: str, response_model: Any = None, **options: Any) -> Callable[..., Any]:
        return self.route("PUT", path, response_model, **options)

    def events(self, path: str, missing: str, **options: Any) -> Callable[..., Any]:
        """A stream of server-sent events; `missing` describes its 404, which is JSON (the
        route's media type would otherwise be claimed for it too)."""
        responses = {404: json_error(missing)}
        return self.route(
            "GET", path, response_class=EventSourceResponse, responses=responses, **options
        )

    def delete(self, path: str, response_model: Any = None, **options: Any) -> Callable[..., Any]:
        return self.route("DELETE", path, response_model, **options)

    def install(self, app: FastAPI, guarded: bool, replica: bool = False) -> None:
        """Add every route to the app's own router (`include_router` would put them behind a
        router of their own: a second round of matching on every request).
        With `guarded`, the routes that need access get their bearer guard; on a `replica`,
        the management routes answer 409 (after the guard: a stranger learns nothing); on
        a primary, they answer once what they changed is published."""
        for spec in self.specs:
            options = dict(spec.options)
            responses = dict(options.pop("responses", {}))
            dependencies = []
            if guarded and spec.access is not None:
                dependencies = [Depends(GUARDS[spec.access])]
                responses.update(GUARD_RESPONSES[spec.access])
            if replica and spec.access == "management":
                dependencies.append(Depends(refuse_on_replica))
                responses.update(error_responses(409))
            elif spec.access == "management":  # before the answer is sent: scope "function"
                dependencies.append(Depends(answer_once_published, scope="function"))
            app.router.add_api_route(
                spec.path,
                spec.endpoint,
                methods=[spec.method],
                dependencies=dependencies,
                responses=responses,
                **options,
            )
            # FastAPI would repeat the whole docstring as the description.
            app.router.routes[-1].description = spec.description  # type: ignore[attr-defined]
