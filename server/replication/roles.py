"""Starting a server in its role: a primary serves again what it served before and
publishes every change; a replica follows the primary's set before it answers anything."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from server.errors import ServiceError
from server.inference.registry import label
from server.metrics import Metrics
from server.replication.follower import Follower
from server.replication.publisher import Publisher
from server.replication.report import FollowCollector
from server.service.operations import ModelService

logger = logging.getLogger("server")


@asynccontextmanager
async def primary(service: ModelService, publisher: Publisher) -> AsyncIterator[None]:
    """Load what the primary that ran before served (its replicas still serve it), then
    publish every change. A version that no longer loads is left out, and logged."""
    previous = await asyncio.to_thread(publisher.previous)
    for name, served in sorted(previous.models.items()):
        for version in sorted(served.loaded):
            try:
                await service.load(name, version, None)
            except ServiceError as error:
                logger.warning("not serving %s again: %s", label((name, version)), error.detail)
    publisher.start(service.registry, service.versions)
    try:
        yield
    finally:
        await publisher.close()


@asynccontextmanager
async def replica(
    service: ModelService, sync_seconds: float, metrics: Metrics
) -> AsyncIterator[Follower]:
    follower = Follower(service.store, service.registry, service.versions, sync_seconds)
    metrics.add_collector(FollowCollector(follower.state))
    await follower.start()
    served = ", ".join(label(key) for key in service.registry.loaded()) or "nothing yet"
    logger.info("replica: following the serving set in %s; serving %s", service.store.root, served)
    try:
        yield follower
    finally:
        await follower.close()
