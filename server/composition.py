"""The composition: every part of the service built from the settings, in one place, when
the server starts (the app's lifespan), and closed when it stops. `create_app` wires HTTP
around them; nothing here knows about requests."""

from __future__ import annotations

import asyncio
import gc
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from functools import partial

import sklearn
from threadpoolctl import threadpool_limits
from uvicorn.logging import DefaultFormatter

from server.algorithms import preload
from server.automl.runner import AutoML
from server.config import Settings
from server.errors import StartupFailed
from server.explain.explainer import Explainer, ExplainLimits
from server.explain.explanations import Explanations
from server.explain.report import ExplainerCollector
from server.http.middleware.access_log import BatchedLines, access_logger
from server.inference.batching import BatchingSettings
from server.inference.loaded import read_model
from server.inference.registry import Registry
from server.metrics import Metrics
from server.monitoring.capture import Capture
from server.monitoring.collector import MonitoringCollector
from server.monitoring.layout import WRITER_PATTERN
from server.monitoring.monitor import Monitor
from server.replication import roles
from server.replication.follower import Follower
from server.replication.publisher import Publisher
from server.service.catalog import Catalog
from server.service.operations import ModelService
from server.service.versions import Versions
from server.store import recovery
from server.store.files import ModelStore
from server.store.keys import signing_key
from server.training.backend import TrainingBackend
from server.training.backends.local import LocalBackend
from server.training.cores import CorePlan, allowed_cores, plan_cores
from server.training.limits import TrainingLimits
from server.training.trainer import Trainer
from server.ui.hub import SnapshotHub
from server.ui.snapshot import Snapshots

logger = logging.getLogger("server")


@dataclass(frozen=True)
class Parts:
    service: ModelService
    catalog: Catalog
    automl: AutoML
    hub: SnapshotHub
    explanations: Explanations
    follower: Follower | None  # a replica's (SERVING_ROLE=replica)
    publisher: Publisher | None  # a primary's
    monitor: Monitor


def configure_logging() -> None:
    """Our messages (leftovers cleaned, dead workers replaced) beside uvicorn's own, and the
    access log as bare lines (a JSON line must be nothing but the JSON)."""
    if not logger.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(DefaultFormatter("%(levelprefix)s %(message)s", use_colors=False))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    if not access_logger.handlers:
        lines = BatchedLines()
        lines.setFormatter(logging.Formatter("%(message)s"))
        access_logger.addHandler(lines)
        access_logger.propagate = False


def monitor_for(settings: Settings, store: ModelStore) -> Monitor:
    """The monitor, not started. A replica writes under its own folder (REPLICA_NAME, or its
    host name); a primary under `primary` unless named."""
    writer = settings.replica_name or (socket.gethostname() if settings.is_replica else "primary")
    if not WRITER_PATTERN.fullmatch(writer):
        raise StartupFailed(
            f"REPLICA_NAME={writer!r} can't name a folder: it starts with a letter or a digit, "
            "then letters, digits, '.', '_', '-', 64 characters at most"
        )
    capture = Capture(
        settings.capture_root, writer, settings.capture_queue_rows,
        settings.capture_flush_seconds, settings.capture_retention_days,
        int(settings.capture_queue_mb * (1 << 20)),
    )  # fmt: skip
    return Monitor(store, capture)


def backend(settings: Settings, cores: CorePlan, warm: bool = True) -> TrainingBackend:
    """The backend, built but not started. A Dask scheduler that can't be reached within
    DASK_CONNECT_SECONDS is a StartupFailed (one line, no traceback)."""
    if settings.training_backend == "dask":
        # Imported only here: the local backend needs nothing of Dask.
        from server.training.backends.dask_backend import DaskBackend, require_reachable

        assert settings.dask_scheduler_address is not None  # Settings checked it
        require_reachable(settings.dask_scheduler_address, settings.dask_connect_seconds)
        return DaskBackend(settings.dask_scheduler_address)
    return LocalBackend(
        settings.training_slots,
        settings.warm_workers and warm,
        cores,
        settings.training_idle_priority,
    )


def _pin_this_process() -> None:
    """Inference runs in this process: one thread per prediction, as trainings are one core
    each (BLAS and OpenMP pools would otherwise take every core). Every X reaching an
    estimator here was checked finite (server.ingest): scikit-learn need not check it
    again on each predict (docs/performance-history.md)."""
    preload()
    threadpool_limits(limits=1)
    sklearn.set_config(assume_finite=True)


@asynccontextmanager
async def started(settings: Settings, metrics: Metrics, open_mode: bool) -> AsyncIterator[Parts]:
    """The parts, running; closed in reverse on the way out."""
    configure_logging()
    replica = settings.is_replica
    key, key_source = await asyncio.to_thread(
        signing_key,
        settings.signing_secret,
        settings.model_signing_key_file,
        settings.models_path,
        create=not replica,  # a replica never writes: it needs the primary's key
    )
    logger.info("model files are signed and checked with key %s, %s", key.key_id, key_source)
    store = ModelStore(settings.models_path, key)
    if replica:
        recovery.require_store(store)
    else:
        recovery.prepare(store)
    _pin_this_process()
    cores = plan_cores(allowed_cores(), settings.pin_training_cores, settings.training_nice)
    training = backend(settings, cores, warm=not replica)
    trainer = Trainer(
        training,
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
    read = partial(
        read_model, store, setting=settings.inference_runtime, estimator=settings.estimator_loading
    )
    publisher = None if replica else Publisher(store)
    changed = publisher.changed if publisher is not None else (lambda: None)
    registry = Registry(read, settings.max_inference_models, batching, metrics, changed)
    versions = Versions(store, registry, metrics, trainer.training_version, changed, replica)
    service = ModelService(
        store,
        trainer,
        registry,
        versions,
        settings.inference_runtime == "auto",
        settings.max_categories,
    )
    if replica:
        service.primary_hint = f" ({settings.primary_url or 'PRIMARY_URL'})"
    monitor = monitor_for(settings, store)
    await asyncio.to_thread(monitor.start, [] if replica else store.names())
    service.monitor = monitor
    metrics.add_collector(MonitoringCollector(monitor))
    if publisher is not None:
        monitor.on_change = publisher.changed
    catalog = Catalog(service)
    # Explanations run where trainings run, never on the server's own core.
    limits = ExplainLimits(
        settings.max_explain_queue, settings.explain_timeout_seconds, settings.retry_after_seconds
    )
    explainer = Explainer(store, cores.training_cores, cores.nice, limits)
    metrics.add_collector(ExplainerCollector(explainer))
    hub = SnapshotHub(Snapshots(catalog, service, metrics).build)
    for untrusted in await asyncio.to_thread(catalog.untrusted):
        logger.warning("%s", untrusted["error"])
    _log_plan(settings, store, training, open_mode)
    serving = AsyncExitStack()
    follower = None
    if publisher is None:  # a replica
        role = roles.replica(service, settings.replica_sync_seconds, metrics)
        follower = await serving.enter_async_context(role)
    else:
        await serving.enter_async_context(roles.primary(service, publisher))
    explanations = Explanations(service, explainer, settings.max_explain_values)
    parts = Parts(
        service, catalog, AutoML(service), hub, explanations, follower, publisher, monitor
    )
    # Everything imported so far (the five libraries, ONNX Runtime, FastAPI: over a million
    # objects) lives as long as the process. Out of the collector's sight, a full collection
    # no longer walks them all, which paused the loop and was the whole p99 tail (see the
    # earlier performance runs, docs/performance-history.md).
    if settings.gc_freeze:
        gc.collect()
        gc.freeze()
    try:
        yield parts
    finally:
        await serving.aclose()
        await asyncio.to_thread(monitor.close)  # every captured row queued is written
        explainer.close()
        await parts.hub.close()
        await parts.automl.close()
        await trainer.close()


def _log_plan(
    settings: Settings, store: ModelStore, training: TrainingBackend, open_mode: bool
) -> None:
    logger.info(
        "serving models from %s: %s, up to %d loaded model(s); %s",
        store.root,
        f"training on the Dask cluster at {settings.dask_scheduler_address}"
        if settings.training_backend == "dask"
        else f"{settings.training_slots} training slot(s)",
        settings.max_inference_models,
        "no tokens set: writing calls answered only to ALLOWED_HOSTS"
        if open_mode
        else "bearer tokens required",
    )
    if isinstance(training, LocalBackend):
        logger.info("cores: %s", training.cores.describe())
        if (sharing := training.cores.sharing(settings.training_slots)) is not None:
            logger.warning("cores: %s", sharing)
