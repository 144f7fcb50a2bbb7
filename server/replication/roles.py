"""Starting a server in its role: a primary publishes every change of what it serves; a
replica follows the primary's set before it answers anything."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.inference.registry import label
from server.metrics import Metrics
from server.replication.follower import Follower
from server.replication.publisher import Publisher
from server.replication.report import FollowCollector
from server.service.operations import ModelService

logger = logging.getLogger("server")


@asynccontextmanager
async def primary(service: ModelService, publisher: Publisher) -> AsyncIterator[None]:
    """Publish every change (the set the primary before left stays until the first)."""
    previous = await asyncio.to_thread(publisher.previous)
    if previous.models:
        logger.info(
            "the replicas serve what the last primary left (%s) until this one loads, unloads "
            "or removes a model",
            ", ".join(label((n, v)) for n, s in sorted(previous.models.items()) for v in s.loaded),
        )
    monitor = service.monitor
    publisher.start(
        service.registry,
        service.versions,
        lambda name: monitor.published_setting(name) if monitor is not None else None,
    )
    try:
        yield
    finally:
        await publisher.close()


@asynccontextmanager
async def replica(
    service: ModelService, sync_seconds: float, metrics: Metrics
) -> AsyncIterator[Follower]:
    follower = Follower(
        service.store, service.registry, service.versions, sync_seconds, service.monitor
    )
    metrics.add_collector(FollowCollector(follower.state))
    await follower.start()
    served = ", ".join(label(key) for key in service.registry.loaded()) or "nothing yet"
    logger.info("replica: following the serving set in %s; serving %s", service.store.root, served)
    try:
        yield follower
    finally:
        await follower.close()
