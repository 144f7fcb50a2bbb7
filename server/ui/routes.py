"""The dashboard's routes: the page, its assets, and its one event stream.

The page itself is open, as /docs is: it holds no data, and asks for a token when tokens
are set. The stream needs the inference token; every action goes to the API's own
endpoints, which check the token as always. Everything the page loads comes from here,
under a Content-Security-Policy that lets it load nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from server.http.auth import Tokens
from server.http.routing import RouteTable
from server.ui.hub import SnapshotHub

HERE = Path(__file__).parent
STATIC_URL = "/ui/static"
# Scripts, styles, images and connections: this origin only; no inline script or style
# attribute in the markup (the scripts set styles through the CSSOM, which this allows).
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
)
templates = Environment(
    loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"])
)
table = RouteTable()


async def _hub(request: Request) -> SnapshotHub:
    hub: SnapshotHub = request.app.state.ui_hub
    return hub


Hub = Annotated[SnapshotHub, Depends(_hub)]


@table.get("/ui", response_class=HTMLResponse)
async def dashboard(request: Request) -> HTMLResponse:
    """The dashboard (a web page)."""
    tokens: Tokens = request.app.state.tokens
    settings = request.app.state.settings
    page = templates.get_template("dashboard.html").render(
        static=STATIC_URL,
        tokens_required=not tokens.open,
        version=request.app.version,
        replica=settings.is_replica,
        primary_url=settings.primary_url,
    )
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
    }
    return HTMLResponse(page, headers=headers)


# the page's own feed, not an API to build on
@table.get(
    "/ui/events", access="inference", response_class=StreamingResponse, include_in_schema=False
)
async def dashboard_events(request: Request, hub: Hub) -> StreamingResponse:
    """Plain bytes shared by every page of a role (FastAPI's own SSE encodes each event
    for each stream; a snapshot a second keeps the connection alive)."""
    tokens: Tokens = request.app.state.tokens
    role = "open" if tokens.open else tokens.role_of_header(request.headers["authorization"])
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        hub.frames(role or "inference"), media_type="text/event-stream", headers=headers
    )


def install(app: FastAPI, guarded: bool) -> None:
    table.install(app, guarded)
    app.mount(STATIC_URL, StaticFiles(directory=HERE / "static"), name="ui-static")
