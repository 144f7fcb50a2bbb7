"""The application: `server.main:app` (what `python -m server serve` runs), or
`create_app(settings)` in tests.

`create_app` wires HTTP and nothing else: the routes, the middleware, the hot path in front.
The parts are built by server.composition when the server starts (the lifespan), so importing this
module reads the settings and defines the app, and does nothing more.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import NoReturn

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline

from server import __version__, composition
from server.config import Settings, load_settings
from server.errors import StartupFailed
from server.http.auth import Tokens, warn_if_exposed
from server.http.docs import STATIC_URL, install_redoc
from server.http.errors import install_error_handlers
from server.http.middleware.body_size import BodySizeLimit
from server.http.middleware.fast_predict import PredictFastPath
from server.http.middleware.guard import GuardRules, RequestGuard
from server.http.middleware.instrument import Instrument, RequestLog
from server.http.middleware.streams import StreamLimit
from server.http.request_ids import RequestIds
from server.http.routes import TABLES
from server.ingest.limits import RequestLimits
from server.metrics import Metrics, NoMetrics
from server.store.keys import check_settings
from server.ui import routes as ui_routes

logger = logging.getLogger("server")
# Seconds after start-up to look at the listening sockets (uvicorn binds them after the
# lifespan has started).
EXPOSURE_CHECK_SECONDS = 1.0


def stop(error: StartupFailed, state: object = None) -> NoReturn:
    """The one way a start-up fails: one line that says what to fix. In the lifespan
    (`state`: the app's), the line goes to uvicorn as the start-up's failure
    (server.http.middleware.fast_predict), which would otherwise print a traceback."""
    if state is None:
        print(error, file=sys.stderr)
    else:
        state.fatal = str(error)  # type: ignore[attr-defined]
    raise SystemExit(2) from None


def create_app(settings: Settings | None = None) -> PredictFastPath:
    settings = settings or load_settings()
    try:  # settings that can't give a key stop here, before any file is touched
        check_settings(
            settings.signing_secret, settings.model_signing_key_file, settings.models_path
        )
    except StartupFailed as error:
        stop(error)
    tokens = Tokens.of(
        settings.management_token.get_secret_value() if settings.management_token else None,
        settings.inference_token.get_secret_value() if settings.inference_token else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            stack.callback(log.close)  # the access log's last lines, after everything else
            try:
                built = await stack.enter_async_context(
                    composition.started(settings, metrics, tokens.open)
                )
            except StartupFailed as error:
                stop(error, app.state)
            app.state.service, app.state.catalog = built.service, built.catalog
            app.state.automl, app.state.ui_hub = built.automl, built.hub
            app.state.explanations, app.state.follower = built.explanations, built.follower
            app.state.publisher, app.state.monitor = built.publisher, built.monitor
            loop = asyncio.get_running_loop()
            loop.call_later(EXPOSURE_CHECK_SECONDS, warn_if_exposed, tokens)
            yield

    # Swagger UI and ReDoc from assets that ship with fastapi-offline: /docs works with no
    # network (FastAPI's own pages fetch their JS and CSS from a public CDN).
    app = FastAPIOffline(
        redoc_url=None,  # server.http.docs serves it, with nothing fetched from elsewhere
        static_url=STATIC_URL,
        title="Model server",
        version=__version__,
        summary="Train classifiers in worker processes and serve their predictions.",
        lifespan=lifespan,
    )
    metrics: Metrics = (
        Metrics(lambda: getattr(app.state, "catalog", None)) if settings.metrics else NoMetrics()
    )
    limits = RequestLimits.of(
        settings.max_predict_rows, settings.max_fit_rows, settings.max_explain_rows,
        settings.max_columns, settings.max_body_bytes,
    )  # fmt: skip
    app.state.settings, app.state.limits = settings, limits
    app.state.tokens, app.state.metrics = tokens, metrics
    install_redoc(app)
    for table in TABLES:
        table.install(app, guarded=not tokens.open, replica=settings.is_replica)
    ui_routes.install(app, guarded=not tokens.open)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        StreamLimit,
        max_streams=settings.max_event_streams,
        retry_after=settings.retry_after_seconds,
    )
    hosts = settings.hosts if tokens.open else None  # with a token, a page can't send it
    rules = GuardRules(settings.origins, hosts)  # the guard's and the hot path's
    app.add_middleware(RequestGuard, rules=rules)
    app.add_middleware(RequestIds)  # outside the guard: its refusals carry an id too
    log = RequestLog(metrics, settings.access_log)
    noted = settings.metrics or settings.access_log != "off"
    if noted:  # outermost: it sees every answer
        app.add_middleware(Instrument, log=log, router=app.router)
    # What uvicorn runs: the hot path of POST /predict, in front of everything FastAPI does.
    return PredictFastPath(
        app,
        lambda: getattr(app.state, "service", None),
        tokens,
        log.note if noted else None,
        settings.max_body_bytes,
        rules,
        limits.predict,
    )


app = create_app()
