"""The Dask backend: each training runs as a task on a worker of a Dask cluster.

One worker thread is one slot: the server's gate counts the threads of the workers that are
connected now (refreshed twice a second), so a fit with no free thread is a 503 at once and
never waits in Dask's queue, and workers that join or leave change the slot count.

What the cluster can and cannot do decides the rest:
- Progress and memory arrive as events from the task (server.training.backends.dask_task).
- A running task can't be interrupted, so a stop is cooperative: the server sets the job's
  `distributed.Event`, the fit stops at its next iteration, and if it has not within
  STOP_GRACE_SECONDS (one long step: a deep tree, a dataset build) its worker is restarted
  through its nanny. Either way the job's slot is given back at once.
- A task whose worker dies fails with 500, never silently retried elsewhere: the scheduler
  should run with `allowed-failures: 0` (KilledWorker at once), and in case it does not, a
  run whose worker has left the cluster is failed here and told to stop.
- The model comes back as bytes and is written here, under this server's MODELS_PATH.
- If the scheduler goes away, running jobs fail with 500, the slot count drops to 0 (503),
  and the backend connects again as soon as the scheduler is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import dask
from distributed import Client, Event
from distributed.client import Future as DaskFuture

from server.errors import NoFreeSlot, ServiceError, StartupFailed, StorageFailed, WorkerCrashed
from server.ml.progress import PHASES, Progress, TrainingStopped
from server.store.files import ModelStore
from server.training.backend import Run, TrainingBackend
from server.training.backends import dask_task as remote
from server.training.background import BackgroundTasks
from server.training.request import TrainingRequest

logger = logging.getLogger(__name__)

REFRESH_SECONDS = 0.5
CONNECT_TIMEOUT_SECONDS = 5.0
STOP_GRACE_SECONDS = 1.0
PROBE_INTERVAL_SECONDS = 0.5  # at start-up, while waiting for the scheduler


class DaskRun(Run):
    def __init__(
        self,
        backend: DaskBackend,
        future: DaskFuture,
        request: TrainingRequest,
        key: str,
        store: ModelStore,
    ) -> None:
        self._backend = backend
        self._future = future
        self._name = request.name
        self._version = request.version
        self._candidate = request.candidate  # AutoML's: sent back to the search, not saved
        self.key = key
        self._store = store
        self.worker: str | None = None  # the worker's address, once the task has started
        self.worker_lost = False
        self._done: float = 0.0
        self._total: float | None = None
        self._phase = PHASES[0]
        self._rss: int | None = None
        self.outcome = asyncio.get_running_loop().create_future()
        self._waiter = asyncio.get_running_loop().create_task(self._wait())

    # -- what the task reports ---------------------------------------------------------------
    def on_report(self, report: dict[str, Any]) -> None:
        self.worker = report["worker"]
        self._done = float(report["done"])
        self._total = float(report["total"]) if report["total"] > 0 else None
        self._phase = report.get("phase", self._phase)
        self._rss = int(report["rss"])

    def progress(self) -> Progress:
        return Progress(self._done, self._total, self._phase)

    def memory_bytes(self) -> int | None:
        return self._rss

    # -- ending ------------------------------------------------------------------------------
    async def _wait(self) -> None:
        try:
            model, onnx, metadata = await self._future
            self._phase = "saving"  # here: the server writes what the worker sent
            if self._candidate:
                saved = {"metadata": metadata, "model": (model, onnx)}
            else:
                saved = await asyncio.to_thread(self._save, model, onnx, metadata)
        except BaseException as error:  # every ending is an outcome
            if not self.outcome.done():
                self.outcome.set_exception(self._explain(error))
            if isinstance(error, asyncio.CancelledError) and not self._future.cancelled():
                raise
        else:
            if not self.outcome.done():
                self.outcome.set_result(saved)
        finally:
            self._backend.forget(self)

    def _save(self, model: bytes, onnx: bytes | None, metadata: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._store.save_serialized(self._name, self._version, model, onnx, metadata)
        except OSError as error:
            raise StorageFailed(f"model '{self._name}' could not be saved: {error}") from None

    def _explain(self, error: BaseException) -> ServiceError:
        if isinstance(error, ServiceError):  # InvalidInput from the fit, StorageFailed
            return error
        if isinstance(error, TrainingStopped):
            return WorkerCrashed(f"the training of '{self._name}' was stopped")
        kind = type(error).__name__
        if kind == "KilledWorker" or self.worker_lost:
            return WorkerCrashed(
                f"the Dask worker training '{self._name}' died; nothing was saved and the "
                "slot comes back when the worker does"
            )
        if isinstance(error, asyncio.CancelledError) or kind in (
            "FutureCancelledError",
            "CancelledError",
        ):
            return WorkerCrashed(
                f"the training of '{self._name}' was lost with the connection to the Dask "
                "scheduler; nothing was saved"
            )
        return WorkerCrashed(f"the training of '{self._name}' failed on Dask: {kind}: {error}")

    def fail_worker_lost(self) -> None:
        """Its worker left the cluster: a 500 now, and no silent retry elsewhere."""
        self.worker_lost = True
        self._backend.tasks.spawn(self._stop_task())

    async def stop(self) -> None:
        await self._stop_task()

    async def _stop_task(self) -> None:
        """Ask the fit to stop; past the grace period, restart its worker. Then forget the
        task, so that Dask neither keeps its result nor runs it again."""
        client = self._backend.client
        if client is None:
            return
        await Event(remote.stop_event_name(self.key), client=client).set()
        with contextlib.suppress(Exception):  # a timeout, or the fit's own ending
            await asyncio.wait_for(asyncio.shield(self._waiter), STOP_GRACE_SECONDS)
        if not self._future.done() and self.worker is not None:
            logger.info("restarting Dask worker %s to stop '%s'", self.worker, self._name)
            self._backend.tasks.spawn(self._backend.restart_worker(self.worker))
        with contextlib.suppress(Exception):
            await client.cancel(self._future, force=True)
        with contextlib.suppress(Exception):
            await Event(remote.stop_event_name(self.key), client=client).clear()


class DaskBackend(TrainingBackend):
    name = "dask"

    def __init__(self, address: str) -> None:
        self.address = address
        self.client: Client | None = None
        self._threads: dict[str, int] = {}  # worker address -> threads, connected now
        self._runs: dict[str, DaskRun] = {}  # by task key
        self.tasks = BackgroundTasks()
        self._refresher: asyncio.Task[None] | None = None

    # -- life cycle ------------------------------------------------------------------------
    async def start(self) -> None:
        # A training's data is its task's argument, so it travels with the task (through the
        # scheduler); Dask's warning about large graphs would fire on every big fit.
        dask.config.set({"distributed.admin.large-graph-warning-threshold": "4GiB"})
        await self._connect()
        self._refresher = asyncio.get_running_loop().create_task(self._keep_fresh())

    async def _connect(self) -> None:
        client = await Client(
            self.address,
            asynchronous=True,
            timeout=CONNECT_TIMEOUT_SECONDS,
            set_as_default=False,
        )
        client.subscribe_topic(remote.TOPIC, self._on_event)
        remote.send_code_by_value()  # the cluster needs none of this project's code
        await client.register_plugin(remote.PreloadLibraries())
        self.client = client
        await self._refresh()

    async def close(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
        for run in list(self._runs.values()):
            with contextlib.suppress(Exception):
                await run.stop()
        if self.client is not None:
            await self.client.close()

    # -- the cluster as it is now ------------------------------------------------------------
    def _connected(self) -> bool:
        return self.client is not None and self.client.status == "running"

    def capacity(self) -> int:
        return sum(self._threads.values()) if self._connected() else 0

    def describe(self) -> dict[str, Any]:
        threads = sum(self._threads.values())  # one a slot, on the workers' cores
        described = {"backend": self.name, "scheduler": self.address, "training_cores": threads}
        return {**described, "workers": len(self._threads), "server_core": None}

    async def _keep_fresh(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            try:
                await self._refresh()
            except Exception as error:  # the scheduler is away: no slots
                self._threads = {}
                logger.debug("Dask scheduler at %s unreachable: %s", self.address, error)

    async def _refresh(self) -> None:
        if self.client is None or self.client.status in ("closed", "closing"):
            await self._connect()  # the client gave up after losing the scheduler: again
            return
        if self.client.status != "running":
            self._threads = {}
            return
        identity = await self.client.scheduler.identity(n_workers=-1)
        self._threads = {
            address: int(worker["nthreads"])
            for address, worker in identity["workers"].items()
            if worker.get("status") == "running"
        }
        for run in list(self._runs.values()):
            if run.worker is not None and run.worker not in self._threads and not run.worker_lost:
                logger.warning("Dask worker %s left while training; failing its job", run.worker)
                run.fail_worker_lost()

    def _on_event(self, event: tuple[float, dict[str, Any]]) -> None:
        _, report = event
        run = self._runs.get(report.get("job", ""))
        if run is not None:
            run.on_report(report)

    # -- running -----------------------------------------------------------------------------
    def run(self, request: TrainingRequest, store: ModelStore) -> DaskRun:
        if not self._connected() or self.client is None:
            raise NoFreeSlot(f"the Dask scheduler at {self.address} can't be reached")
        key = f"model-server-{request.name}-{uuid.uuid4().hex[:8]}"
        # retries=0: a task whose worker dies is a 500 for its fit, not a run elsewhere.
        task, payload = remote.as_task(remote.train_on_worker, request, key)
        future = self.client.submit(task, payload, key=key, pure=False, retries=0)
        run = DaskRun(self, future, request, key, store)
        self._runs[key] = run
        return run

    def forget(self, run: DaskRun) -> None:
        self._runs.pop(run.key, None)

    async def restart_worker(self, address: str) -> None:
        if self.client is None:
            return
        try:
            await self.client.restart_workers([address], raise_for_error=False)
        except Exception as error:  # it may have gone by itself
            logger.warning("could not restart Dask worker %s: %s", address, error)


def require_reachable(address: str, within_seconds: float) -> None:
    """Wait until something listens at the scheduler's address (`tcp://host:port`), for at
    most `within_seconds` (compose may start this server before the scheduler); then stop the
    start-up with one clear line, rather than a traceback from deep inside the Dask client."""
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    deadline = time.monotonic() + within_seconds
    while True:
        try:
            if parts.hostname is None or parts.port is None:
                raise ValueError("expected tcp://host:port")
            socket.create_connection((parts.hostname, parts.port), within_seconds).close()
            return
        except OSError as error:
            if time.monotonic() < deadline:
                time.sleep(PROBE_INTERVAL_SECONDS)
                continue
            problem: Exception = error
        except ValueError as error:
            problem = error
        raise StartupFailed(
            f"cannot reach the Dask scheduler at DASK_SCHEDULER_ADDRESS={address!r} "
            f"(waited {within_seconds:g} s, DASK_CONNECT_SECONDS): {problem}"
        )
