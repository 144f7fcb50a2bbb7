"""The primary's side: every change of what it serves (a load, an unload, a move of a
loaded name's pointers, a removal) rewrites the serving set in the store.

A primary starts serving nothing (models survive a restart as `trained`), and leaves the set
the one before it wrote in place until its own first change: a restart alone never empties
the replicas.

Changes only wake the writer; it takes one snapshot of the registry and the pointers in the
event loop (so the set is one instant's) and writes it in a thread, again until nothing has
changed since. A burst of changes is written once, and never out of order. A write the disk
refuses is tried again every RETRY_SECONDS until it goes through: freeing space is enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from server.errors import ServiceError
from server.inference.registry import Key, Registry
from server.replication import manifest
from server.replication.manifest import Served, ServingSet, UnreadableSet
from server.service.versions import Versions
from server.store.files import ModelStore
from server.store.pointers import Pointers

logger = logging.getLogger("server")
RETRY_SECONDS = 2.0
Captures = Callable[[str], dict[str, Any] | None]


class Publisher:
    def __init__(self, store: ModelStore) -> None:
        """Made before the registry and the versions, which call `changed`."""
        self._store = store
        self._written = ServingSet()
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._captures: Captures = lambda name: None
        self._failing = False  # the last write failed: logged once, tried again

    def previous(self) -> ServingSet:
        """The set a primary that ran before left (empty if none, or unreadable), so that
        the generations go on (blocking)."""
        try:
            found = manifest.read(self._store.root, self._store.key)
        except UnreadableSet as error:
            logger.warning("serving set: %s; starting from an empty one", error)
            return ServingSet()
        self._written = found or ServingSet()
        return self._written

    def start(self, registry: Registry, versions: Versions, captures: Captures) -> None:
        """`captures`: a name's capture setting as the set carries it (None: never on)."""
        self._captures = captures
        self._task = asyncio.get_running_loop().create_task(self._run(registry, versions))
        self._idle.set()

    def changed(self) -> None:
        """Something the set holds may have changed: write it soon."""
        self._idle.clear()
        self._wake.set()

    async def settled(self) -> None:
        """Until every change so far is in the store: a management call answers after it,
        so that what it changed is the replicas' to follow once it has answered."""
        await self._idle.wait()

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self, registry: Registry, versions: Versions) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            # One instant's snapshot: what is loaded (each with its files' tag, as read at
            # its load) and those names' pointers.
            loaded = {
                key: batcher.model.tag
                for key in registry.loaded()
                if (batcher := registry.get(key))
            }
            pointers = {name: versions.cached(name) for name, _ in loaded}
            captures = {name: self._captures(name) for name, _ in loaded}
            try:
                await asyncio.to_thread(self._write, loaded, pointers, captures)
            except (OSError, ServiceError) as error:  # a full disk: tried again until it goes
                if not self._failing:
                    logger.error("the serving set could not be written (tried again every "
                                 "%g s): %s", RETRY_SECONDS, error)  # fmt: skip
                self._failing = True
                asyncio.get_running_loop().call_later(RETRY_SECONDS, self.changed)
            except Exception:  # management calls wait on this loop: it never stops
                logger.exception("the serving set could not be written")
            else:
                if self._failing:
                    logger.info("the serving set is written again")
                self._failing = False
            if not self._wake.is_set():
                self._idle.set()

    def _write(
        self,
        loaded: dict[Key, str],
        pointers: dict[str, Pointers | None],
        captures: dict[str, dict[str, Any] | None],
    ) -> None:
        models: dict[str, Served] = {}
        for (name, version), tag in loaded.items():
            moved = pointers[name]
            if moved is None:  # loaded, so resolved: its pointers are in memory
                continue
            served = models.setdefault(
                name, Served(moved.current, dict(moved.aliases), {}, captures[name])
            )
            served.loaded[version] = tag
        if models == self._written.models and self._written.generation:
            return
        self._written = manifest.write(
            self._store.root, self._store.key, models,
            manifest.next_generation(self._written.generation),
        )  # fmt: skip
