"""Versions of a model name: which one a request means, and the moves of its pointers.

A request names a model and, optionally, a version or an alias; with neither it means the
current version. The pointers of every name in use are kept in memory (read from
`NAME/pointers.json` at first use) so that resolving costs a dict lookup on the hot path.

A move (promote, roll back, set or remove an alias) is one at a time per name, and when the
version the pointer leaves is loaded it is a **swap**: the new version is loaded first (one
above the cap while it lasts), the pointers are written to disk, then switched in memory in
one step of the event loop, so each request is answered by the old version or the new one.
The old version is unloaded once the requests it is answering are done, unless another
pointer still names it.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from server.errors import InvalidInput, ModelBusy, ModelNotFound, NothingToRollBack
from server.inference.memory import release_unused_memory
from server.inference.registry import Registry
from server.metrics import Metrics
from server.store.files import ModelStore
from server.store.pointers import ALIAS_PATTERN, RESERVED_ALIASES, Pointers
from server.training.background import BackgroundTasks


class Versions:
    def __init__(
        self,
        store: ModelStore,
        registry: Registry,
        metrics: Metrics,
        training_version: Callable[[str], int | None],
        on_change: Callable[[], None] = lambda: None,
        following: bool = False,
    ) -> None:
        """`on_change`: a loaded name's pointers moved (server.replication publishes it);
        `following`: a replica's, whose pointers in memory are only the primary's serving
        set's (`adopt`), never a cached read of the disk."""
        self._store = store
        self._on_change = on_change
        self._following = following
        self._training_version = training_version
        self._registry = registry
        self._metrics = metrics
        self._pointers: dict[str, Pointers] = {}
        self._moving: defaultdict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._tasks = BackgroundTasks()

    # -- resolving -------------------------------------------------------------------------
    def pointers(self, name: str) -> Pointers:
        """The name's pointers (404 when the name does not exist)."""
        pointers = self._pointers.get(name)
        if pointers is None:
            pointers = self._store.read_pointers(name)
            if not self._following:
                self._pointers[name] = pointers
        return pointers

    def cached(self, name: str) -> Pointers | None:
        """The name's pointers if they are in memory (the hot path: no disk)."""
        return self._pointers.get(name)

    def moving(self, name: str) -> asyncio.Lock:
        """The name's lock: held by every move of its pointers, and by its removal."""
        return self._moving[name]

    def forget(self, name: str) -> None:
        """The name was removed: read its pointers from disk if it comes back."""
        self._pointers.pop(name, None)
        self._moving.pop(name, None)
        self._on_change()

    def adopt(self, name: str, pointers: Pointers) -> None:
        """A replica's switch to the primary's pointers, in one step of the event loop."""
        self._pointers[name] = pointers

    def adopted(self) -> list[str]:
        return sorted(self._pointers)

    def resolve(self, name: str, version: int | None = None, alias: str | None = None) -> int:
        """The version a request means. An explicit version is returned as it is: whether it
        exists is for the caller to say, in its own terms (not loaded, not trained...)."""
        pointers = self.pointers(name)
        if version is not None:
            return version
        if alias is not None:
            found = pointers.aliases.get(alias)
            if found is None:
                raise ModelNotFound(name, alias=alias)
            return found
        return pointers.current

    def require(self, name: str, version: int) -> None:
        """404 unless the version exists on disk; 409 while it is still training."""
        if not self._store.metadata_path(name, version).is_file():
            if self._training_version(name) == version:
                raise ModelBusy(f"model '{name}' version {version} is still training")
            raise ModelNotFound(name, version)

    # -- moving ----------------------------------------------------------------------------
    async def promote(self, name: str, version: int) -> dict[str, Any]:
        self.pointers(name)  # 404 before a lock is made for the name
        async with self._moving[name]:
            self.require(name, version)
            pointers = self.pointers(name)
            if version != pointers.current:
                await self._swap(name, pointers.current, version, pointers.move_current(version))
            return self.describe(name)

    async def rollback(self, name: str) -> dict[str, Any]:
        self.pointers(name)
        async with self._moving[name]:
            pointers = self.pointers(name)
            target = pointers.rollback_target()
            if target is None or target not in self._store.versions(name):
                why = (
                    "no earlier current version"
                    if target is None
                    else f"version {target} is deleted"
                )
                raise NothingToRollBack(f"model '{name}' has nothing to roll back to: {why}")
            await self._swap(name, pointers.current, target, pointers.move_current(target))
            return self.describe(name)

    async def set_alias(self, name: str, alias: str, version: int | None) -> dict[str, Any]:
        """Point `alias` at `version`, or remove it (None)."""
        if alias in RESERVED_ALIASES:
            raise InvalidInput(
                f"invalid alias {alias!r}: the API names the current version so, and an alias "
                "of that name would be taken for it"
            )
        if not ALIAS_PATTERN.fullmatch(alias):
            raise InvalidInput(
                f"invalid alias {alias!r}: use 1 to 32 lower-case letters, digits, '_' or '-', "
                "starting with a letter"
            )
        self.pointers(name)
        async with self._moving[name]:
            pointers = self.pointers(name)
            before = pointers.aliases.get(alias)
            if version is None and before is None:
                raise ModelNotFound(name, alias=alias)
            if version is not None:
                self.require(name, version)
            if version != before:
                await self._swap(name, before, version, pointers.set_alias(alias, version))
            return self.describe(name)

    async def _swap(self, name: str, old: int | None, new: int | None, moved: Pointers) -> None:
        swapping = old is not None and new is not None and self._registry.is_loaded((name, old))
        loaded_here = False
        try:
            if swapping:
                assert new is not None
                loaded_here = not self._registry.is_loaded((name, new))
                await self._registry.load((name, new), over_cap=True)
            await asyncio.to_thread(self._store.write_pointers, name, moved)
        except BaseException:
            self._metrics.swap("failed")
            if loaded_here:  # nothing moved: the cap is back where it was
                assert new is not None
                await self._registry.unload((name, new))
            raise
        self._pointers[name] = moved  # the switch: from here on, requests resolve to `new`
        self._on_change()
        self._metrics.swap("swapped" if swapping else "moved")
        if swapping and old not in moved.pinned():
            assert old is not None
            batcher = await self._registry.unload((name, old))
            if batcher is not None:
                self._tasks.spawn(release_when_idle(batcher))

    # -- describing ------------------------------------------------------------------------
    def describe(self, name: str) -> dict[str, Any]:
        pointers = self.pointers(name)
        return {
            "name": name,
            "current_version": pointers.current,
            "aliases": dict(sorted(pointers.aliases.items())),
        }

    def history(self, name: str) -> list[dict[str, Any]]:
        return [move.describe() for move in self.pointers(name).history]

    async def delete(self, name: str, version: int) -> None:
        """Delete a version no pointer names and nobody serves. Its number is recorded in the
        pointers first, so it is never given again."""
        self.pointers(name)
        async with self._moving[name]:
            self._check_deletable(name, version)
            pointers = self.pointers(name)
            if version > pointers.highest_deleted:
                moved = pointers.deleted(version)
                await asyncio.to_thread(self._store.write_pointers, name, moved)
                self._pointers[name] = moved
            # Checked again with no await before the deletion: a load may have begun.
            self._check_deletable(name, version)
            self._store.delete_version(name, version)

    def _check_deletable(self, name: str, version: int) -> None:
        """409 if a pointer names the version, or it is loaded or being loaded."""
        pointers = self.pointers(name)
        self.require(name, version)
        aliases = [alias for alias, v in pointers.aliases.items() if v == version]
        if version == pointers.current:
            raise ModelBusy(
                f"model '{name}' version {version} is current: promote another version first"
            )
        if aliases:
            raise ModelBusy(
                f"model '{name}' version {version} has the alias(es) {', '.join(sorted(aliases))}: "
                "move or remove them first"
            )
        if version in self._registry.versions_loaded(name):
            raise ModelBusy(
                f"model '{name}' version {version} is loaded or being loaded: unload it first"
            )


async def release_when_idle(batcher: Any) -> None:
    """Once the old version's last request is answered, give its memory back."""
    await batcher.until_idle()
    del batcher
    await asyncio.to_thread(release_unused_memory)
