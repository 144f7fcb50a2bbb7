"""The application: `uvicorn server.main:app`, or `create_app(settings)` in tests.

State (store, trainer, registry) is built in the lifespan, not at import time: importing this
module reads the settings and nothing else.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import sklearn
from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from threadpoolctl import threadpool_limits
from uvicorn.logging import DefaultFormatter

from server.automl.runner import AutoML
from server.config import Settings, load_settings
from server.http.auth import Tokens, warn_if_exposed
from server.http.docs import STATIC_URL, install_redoc
from server.http.errors import install_error_handlers
from server.http.middleware.body_size import BodySizeLimit
from server.http.middleware.fast_predict import PredictFastPath
from server.http.middleware.guard import RequestGuard
from server.http.middleware.instrument import Instrument, RequestLog
from server.http.middleware.streams import StreamLimit
from server.http.routes import TABLES
from server.inference.batching import BatchingSettings
from server.inference.registry import Registry
from server.ingest.limits import RequestLimits
from server.metrics import Metrics, NoMetrics
from server.ml.algorithms import preload
from server.service.catalog import Catalog
from server.service.operations import ModelService
from server.service.versions import Versions
from server.store import recovery
from server.store.files import ModelStore
from server.store.keys import UnusableKey, check_settings, signing_key
from server.training.backend import TrainingBackend
from server.training.backends.local import LocalBackend
from server.training.cores import allowed_cores, plan_cores
from server.training.limits import TrainingLimits
from server.training.trainer import Trainer
from server.ui import routes as ui_routes
from server.ui.hub import SnapshotHub
from server.ui.snapshot import Snapshots

T = TypeVar("T")
logger = logging.getLogger("server")
access_logger = logging.getLogger("server.access")

# Seconds after start-up to look at the listening sockets (uvicorn binds them after the
# lifespan has started).
EXPOSURE_CHECK_SECONDS = 1.0


def _configure_logging() -> None:
    """Our messages (leftovers cleaned, dead workers replaced) beside uvicorn's own, and the
    access log as bare lines (a JSON line must be nothing but the JSON)."""
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    if not access_logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        access_logger.addHandler(handler)
        access_logger.propagate = False


def _backend(settings: Settings) -> TrainingBackend:
    """The backend, built but not started (that happens in the lifespan)."""
    if settings.training_backend == "dask":
        # Imported only here: the local backend needs nothing of Dask.
        from server.training.backends.dask_backend import DaskBackend, require_reachable

        assert settings.dask_scheduler_address is not None  # Settings checked it
        # Now, at start-up, rather than in the lifespan: one clear line, not a traceback.
        require_reachable(settings.dask_scheduler_address, settings.dask_connect_seconds)
        return DaskBackend(settings.dask_scheduler_address)
    cores = plan_cores(allowed_cores(), settings.pin_training_cores, settings.training_nice)
    return LocalBackend(
        settings.training_slots, settings.warm_workers, cores, settings.training_idle_priority
    )


def _stop_on_unusable_key(find: Callable[[], T], state: Any = None) -> T:
    """What `find` returns, or the process stops with one line that says what to fix. In
    the lifespan (`state`: the app's), the line goes to uvicorn as the start-up's failure
    (server.http.middleware.fast_predict), which would otherwise print a traceback."""
    try:
        return find()
    except UnusableKey as error:
        if state is None:
            logger.error("%s", error)
        else:
            state.fatal = str(error)
        raise SystemExit(2) from None


def _key_arguments(settings: Settings) -> tuple[str | None, Path, Path]:
    return settings.signing_secret, settings.model_signing_key_file, settings.models_path


def create_app(settings: Settings | None = None) -> PredictFastPath:
    settings = settings or load_settings()
    _configure_logging()
    backend = _backend(settings)
    # Settings that can't give a key stop the process here, before any file is touched:
    # the key file is created (or read) in the lifespan, not when this module is imported.
    _stop_on_unusable_key(lambda: check_settings(*_key_arguments(settings)))
    tokens = Tokens.of(
        settings.management_token.get_secret_value() if settings.management_token else None,
        settings.inference_token.get_secret_value() if settings.inference_token else None,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        key, key_source = _stop_on_unusable_key(
            lambda: signing_key(*_key_arguments(settings)), app.state
        )
        logger.info("model files are signed and checked with key %s, %s", key.key_id, key_source)
        store = ModelStore(settings.models_path, key)
        recovery.prepare(store)
        # Inference runs in this process: one thread per prediction, as trainings are one
        # core each (BLAS and OpenMP pools would otherwise take every core).
        preload()
        threadpool_limits(limits=1)
        # Every X reaching an estimator here was checked finite (server.ingest): scikit-learn
        # need not check it again on each predict (about 10 us of a 1-row call).
        sklearn.set_config(assume_finite=True)
        trainer = Trainer(
            backend,
            store,
            TrainingLimits(settings.max_train_seconds, settings.max_train_memory_mb),
            settings.job_history,
            settings.retry_after_seconds,
            metrics,
        )
        await trainer.start()
        batching = BatchingSettings(
            max_rows=settings.max_batch_rows,
            window=settings.batch_window_ms / 1000,
            inline_budget=settings.inline_predict_ms / 1000,
        )
        registry = Registry(
            store,
            settings.max_inference_models,
            batching,
            metrics,
            settings.inference_runtime,
            settings.estimator_loading,
        )
        versions = Versions(store, registry, metrics, trainer.training_version)
        compile_models = settings.inference_runtime == "auto"
        service = ModelService(store, trainer, registry, versions, compile_models)
        app.state.service = service
        app.state.catalog = Catalog(service)
        app.state.automl = AutoML(service)
        app.state.ui_hub = SnapshotHub(Snapshots(app.state.catalog, service, metrics).build)
        for untrusted in await asyncio.to_thread(app.state.catalog.untrusted):
            logger.warning("%s", untrusted["error"])
        logger.info(
            "serving models from %s: %s, up to %d loaded model(s); %s",
            store.root,
            f"training on the Dask cluster at {settings.dask_scheduler_address}"
            if settings.training_backend == "dask"
            else f"{settings.training_slots} training slot(s)",
            settings.max_inference_models,
            "no tokens set: every endpoint is open" if tokens.open else "bearer tokens required",
        )
        if isinstance(backend, LocalBackend):
            logger.info("cores: %s", backend.cores.describe())
            if (sharing := backend.cores.sharing(settings.training_slots)) is not None:
                logger.warning("cores: %s", sharing)
        asyncio.get_running_loop().call_later(EXPOSURE_CHECK_SECONDS, warn_if_exposed, tokens)
        # Everything imported so far (the five libraries, ONNX Runtime, FastAPI: over a million
        # objects) lives as long as the process. Out of the collector's sight, a full
        # collection no longer walks them all: it paused the loop for ~100 ms, 19 times in
        # 10 s of 1-row predictions at concurrency 32 (devtools/tail_probe.py), and was the
        # whole p99 tail.
        if settings.gc_freeze:
            gc.collect()
            gc.freeze()
        try:
            yield
        finally:
            await app.state.ui_hub.close()
            await app.state.automl.close()
            await trainer.close()
            log.close()  # the access log's last lines

    # Swagger UI and ReDoc from assets that ship with fastapi-offline: /docs works with no
    # network (FastAPI's own pages fetch their JS and CSS from a public CDN).
    app = FastAPIOffline(
        redoc_url=None,  # server.http.docs serves it, with nothing fetched from elsewhere
        static_url=STATIC_URL,
        title="Model server",
        version="3.0.0",
        summary="Train classifiers in worker processes and serve their predictions.",
        lifespan=lifespan,
    )
    metrics: Metrics = (
        Metrics(lambda: getattr(app.state, "catalog", None)) if settings.metrics else NoMetrics()
    )
    app.state.settings = settings
    limits = RequestLimits.of(
        settings.max_predict_rows,
        settings.max_fit_rows,
        settings.max_columns,
        settings.max_body_bytes,
    )
    app.state.limits = limits
    app.state.tokens = tokens
    app.state.metrics = metrics
    install_redoc(app)
    for table in TABLES:
        table.install(app, guarded=not tokens.open)
    ui_routes.install(app, guarded=not tokens.open)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        StreamLimit,
        max_streams=settings.max_event_streams,
        retry_after=settings.retry_after_seconds,
    )
    guard = RequestGuard(app, settings.origins, settings.hosts if tokens.open else None)
    app.add_middleware(
        RequestGuard,
        allowed_origins=settings.origins,
        allowed_hosts=settings.hosts if tokens.open else None,
    )
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
        guard,
        limits.predict,
    )


app = create_app()
