"""A replica's side: load and unload to match the primary's serving set, and adopt its
pointers, within REPLICA_SYNC_SECONDS of every change.

Two ways to notice a change, both cheap: the kernel's notification where the filesystem
gives one (watchfiles; a local disk, a host folder in compose), and a stat of the set's
file a few times per REPLICA_SYNC_SECONDS where it doesn't (NFS and Kubernetes volumes
don't notify). Either only wakes the one task that applies the set, so changes are applied
one at a time, in order.

Per name, every version the set holds is loaded first (beside what serves now, uncapped:
the primary's cap bounds the set), then the name's pointers are adopted in one step of the
event loop, then what the set no longer holds is unloaded once its requests are answered:
the primary's own swap, so no request fails. A version that can't be read or verified
leaves its name as it was (serving what it had); it is tried again when the set changes,
and every RETRY_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from watchfiles import awatch

from server.errors import BrokenModel, ServiceError
from server.inference.registry import Key, Registry, label
from server.monitoring.monitor import Monitor
from server.replication import manifest
from server.replication.manifest import Served, ServingSet, UnreadableSet
from server.service.versions import Versions, release_when_idle
from server.store.files import ModelStore
from server.store.pointers import Pointers
from server.store.signing import metadata_tag
from server.training.background import BackgroundTasks

logger = logging.getLogger("server")
RETRY_SECONDS = 5.0
POLLS_PER_SYNC = 4  # stats of the set's file per REPLICA_SYNC_SECONDS
MAX_POLL_SECONDS = 0.25


@dataclass
class FollowState:
    """What /health and /metrics tell of a replica."""

    applied: ServingSet = field(default_factory=ServingSet)
    seen: ServingSet = field(default_factory=ServingSet)
    # Versions it could not follow: (the error's class, its message).
    problems: dict[Key, tuple[str, str]] = field(default_factory=dict)
    set_problem: str | None = None  # the set itself could not be used

    def ready(self) -> bool:
        """Serving a set: the primary's, or the last good one while the newest can't be
        used. Not ready: it never could read one (another key, say) and serves nothing."""
        return self.set_problem is None or self.applied.generation > 0

    behind_since: float | None = None  # wall clock: the newest change not yet served
    checked_at: float = 0.0  # wall clock of the last read of the set

    def behind_seconds(self) -> float:
        return 0.0 if self.behind_since is None else max(0.0, time.time() - self.behind_since)


class Follower:
    def __init__(
        self,
        store: ModelStore,
        registry: Registry,
        versions: Versions,
        sync_seconds: float,
        monitor: Monitor | None = None,
    ) -> None:
        self._store = store
        self._monitor = monitor
        self._registry = registry
        self._versions = versions
        self._poll_seconds = min(MAX_POLL_SECONDS, sync_seconds / POLLS_PER_SYNC)
        self.state = FollowState()
        self._stamp: tuple[int, ...] | None = None
        self._tags: dict[Key, str] = {}  # what each loaded version is, as the set names it
        self._retry_at = 0.0
        self._wake = asyncio.Event()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._releases = BackgroundTasks()

    async def start(self) -> None:
        """Serve what the primary serves, then keep following (the server says ready after
        this: a replica never answers before it has the primary's models)."""
        await self._sync(force=True)
        loop = asyncio.get_running_loop()
        jobs = (self._apply_loop, self._poll, self._watch)
        self._tasks = [loop.create_task(job()) for job in jobs]

    async def close(self) -> None:
        self._stop.set()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- noticing ------------------------------------------------------------------------
    async def _watch(self) -> None:
        root = self._store.root

        def is_the_set(_change: object, path: str) -> bool:
            return Path(path).name == manifest.FILE_NAME

        try:
            async for _ in awatch(
                root, watch_filter=is_the_set, recursive=False, debounce=50, step=5,
                stop_event=self._stop,
            ):  # fmt: skip
                self._wake.set()
        except Exception as error:  # no notification here: the poll alone keeps up
            logger.warning("no change notification for %s (%s): polling only", root, error)

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)  # a period, not a synchronisation
            stamp = await asyncio.to_thread(manifest.stamp, self._store.root)
            if stamp != self._stamp or (self.state.problems and time.monotonic() > self._retry_at):
                self._wake.set()

    async def _apply_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._sync()
            except Exception:  # never stop following: the next change tries again
                logger.exception("replica: the serving set could not be applied")

    # -- applying ------------------------------------------------------------------------
    async def _sync(self, force: bool = False) -> None:
        root = self._store.root
        stamp = await asyncio.to_thread(manifest.stamp, root)
        retry = bool(self.state.problems) and time.monotonic() > self._retry_at
        if stamp == self._stamp and not (force or retry):
            return
        self._stamp = stamp
        self.state.checked_at = time.time()
        try:
            found = await asyncio.to_thread(manifest.read, root, self._store.key)
            self.state.seen = found or self.state.seen
            target = self._acceptable(found)
        except UnreadableSet as error:
            if self.state.set_problem != str(error):
                logger.error("replica: %s; serving what it had", error)
                self.state.behind_since = _modified(manifest.path_in(root))
            self.state.set_problem = str(error)
            return
        self.state.set_problem = None
        self.state.seen = target
        if self.state.behind_since is None:
            written = target.written()
            self.state.behind_since = written.timestamp() if written else None
        problems: dict[Key, tuple[str, str]] = {}
        for name, served in target.models.items():
            if self._monitor is not None:  # capture as the primary has it
                self._monitor.adopt(name, served.capture)
            if await self._load(name, served, problems):
                self._versions.adopt(name, Pointers(served.current, dict(served.aliases)))
                await self._drop(name, keep=set(served.loaded))
        for name in {*self._versions.adopted(), *(n for n, _ in self._registry.loaded())}:
            if name not in target.models:
                await self._drop(name, keep=set())
                self._versions.forget(name)
                if self._monitor is not None:
                    self._monitor.adopt(name, None)
        for key, problem in problems.items():
            if self.state.problems.get(key) != problem:
                logger.error("replica: not following %s: %s", label(key), problem[1])
        self.state.problems = problems
        self.state.applied = target
        self._retry_at = time.monotonic() + RETRY_SECONDS
        if not problems:
            self.state.behind_since = None

    def _acceptable(self, found: ServingSet | None) -> ServingSet:
        """The set to follow; UnreadableSet for one that would take it back: an older
        generation (a copy put back), or no set at all while it serves one (the primary
        writes an empty set when it serves nothing, never none)."""
        applied = self.state.applied
        if found is None:
            if applied.models:
                raise UnreadableSet(
                    f"{manifest.FILE_NAME} is missing while this replica serves "
                    f"generation {applied.generation}; it keeps serving that (a primary that "
                    "serves nothing writes an empty set, never none)"
                )
            return ServingSet()
        if found.generation < applied.generation or (
            found.generation == applied.generation and not found.same_content(applied)
        ):
            raise UnreadableSet(
                f"{manifest.FILE_NAME} holds generation {found.generation}, older than the "
                f"{applied.generation} this replica serves (a copy put back?); it keeps "
                "serving that until the primary writes a newer one"
            )
        return found

    async def _load(self, name: str, served: Served, problems: dict[Key, tuple[str, str]]) -> bool:
        """Load every version of the name the set holds; False if any could not be."""
        complete = True
        for version, tag in sorted(served.loaded.items()):
            key = (name, version)
            if self._tags.get(key) == tag and self._registry.is_loaded(key):
                continue
            try:
                on_disk = await asyncio.to_thread(self._tag_on_disk, name, version)
                if on_disk != tag:
                    raise BrokenModel(
                        f"the files of {label(key)} in the store are not the ones the primary "
                        "serves (changed since; the next serving set will say)"
                    )
                if self._registry.is_loaded(key):  # the same number, trained again
                    await self._release(key)
                await self._registry.load(key, capped=False)
                self._tags[key] = tag
            except ServiceError as error:
                problems[key] = (type(error).__name__, error.detail)
                complete = False
        return complete

    def _tag_on_disk(self, name: str, version: int) -> str:
        """The version's metadata tag, checked with this server's key (blocking)."""
        return metadata_tag(self._store.read_metadata(name, version))

    async def _drop(self, name: str, keep: set[int]) -> None:
        for version in self._registry.versions_loaded(name):
            if version not in keep:
                await self._release((name, version))

    async def _release(self, key: Key) -> None:
        self._tags.pop(key, None)
        batcher = await self._registry.unload(key)
        if batcher is not None:
            self._releases.spawn(release_when_idle(batcher))


def _modified(path: Path) -> float | None:
    with contextlib.suppress(OSError):
        return path.stat().st_mtime
    return None
