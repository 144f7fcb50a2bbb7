"""ReDoc, served from the assets fastapi-offline ships (Swagger UI at /docs comes with it).

ReDoc's own page would still fetch one image from Redocly's CDN (its footer logo): the
Content-Security-Policy keeps every image on this server, so the page makes no request to any
other host and an air-gapped browser shows it whole.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html
from fastapi.responses import HTMLResponse

STATIC_URL = "/static-offline-docs"  # where FastAPIOffline mounts its assets
CONTENT_SECURITY_POLICY = "img-src 'self' data: blob:"


def install_redoc(app: FastAPI, path: str = "/redoc") -> None:
    @app.get(path, include_in_schema=False)
    async def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        page.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return page
