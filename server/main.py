"""The application: `uvicorn server.main:app`, or `create_app(settings)` in tests.

State (store, trainer, registry) is built in the lifespan, not at import time: importing this
module reads the settings and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sklearn
from fastapi import FastAPI
from threadpoolctl import threadpool_limits

from server import api
from server.algorithms import preload
from server.batching import BatchingSettings
from server.config import Settings, load_settings
from server.http_errors import install_error_handlers
from server.limits import BodySizeLimit
from server.registry import Registry
from server.service import ModelService
from server.storage import ModelStore
from server.training.local import LocalBackend
from server.training.trainer import Trainer, TrainingLimits

logger = logging.getLogger("server")


def _configure_logging() -> None:
    """Our messages (leftovers cleaned, dead workers replaced) beside uvicorn's own."""
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    _configure_logging()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = ModelStore(settings.models_path)
        store.prepare()
        # Inference runs in this process: one thread per prediction, as trainings are one
        # core each (BLAS and OpenMP pools would otherwise take every core).
        preload()
        threadpool_limits(limits=1)
        # Every X reaching an estimator here was checked finite (server.ingest): scikit-learn
        # need not check it again on each predict (about 10 us of a 1-row call).
        sklearn.set_config(assume_finite=True)
        backend = LocalBackend(
            settings.training_slots,
            settings.warm_workers,
            settings.training_nice,
            settings.training_idle_priority,
        )
        trainer = Trainer(
            backend,
            store,
            TrainingLimits(settings.max_train_seconds, settings.max_train_memory_mb),
            settings.job_history,
            settings.retry_after_seconds,
        )
        await trainer.start()
        batching = BatchingSettings(
            max_rows=settings.max_batch_rows,
            window=settings.batch_window_ms / 1000,
            inline_budget=settings.inline_predict_ms / 1000,
        )
        registry = Registry(store, settings.max_inference_models, batching)
        app.state.service = ModelService(store, trainer, registry)
        logger.info(
            "serving models from %s: %d training slot(s), up to %d loaded model(s)",
            store.root,
            settings.training_slots,
            settings.max_inference_models,
        )
        try:
            yield
        finally:
            await trainer.close()

    app = FastAPI(
        title="Model server",
        version="1.0.0",
        summary="Train classifiers in worker processes and serve their predictions.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    api.install_routes(app)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    return app


app = create_app()
