"""Explainer: explanations in one process of their own, on the trainings' cores.

Not a thread of the server: `shap`'s TreeSHAP holds the GIL for the whole of a forest's
explanation (seconds for 1000 rows), which would stop the event loop and every /predict with
it. The process reads each version's estimator itself (its tag checked, as /load does) and
keeps a few (with a forest's TreeExplainer); the server sends it rows and gets numbers back.

One explanation runs at a time; at most MAX_EXPLAIN_QUEUE run or wait (503 beyond), and one
whose client hung up while it waited is never computed. A process that dies (killed, out of
memory), even while idle, is replaced by the next explanation; one that computes past
EXPLAIN_TIMEOUT_SECONDS (or is stopped) is killed and replaced. The process starts with the
first explanation (its imports take seconds, not counted in that limit), not with the
server: a server that never explains never pays for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from collections import Counter
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass

from server.errors import ExplainerBusy, ExplanationTimedOut, WorkerCrashed
from server.ml.explanations import Explanation, Rows
from server.store.files import ModelStore
from server.training.backends.child import InChild

WORKER_MODULE = "server.explain.worker"
START_SECONDS = 120.0  # a new process's imports (shap, numba, the five libraries)
logger = logging.getLogger("server.explain")


@dataclass(frozen=True)
class ExplainLimits:
    queue: int  # explanations running or waiting
    timeout_seconds: float  # one explanation's computation
    retry_after_seconds: int


class Explainer:
    def __init__(
        self, store: ModelStore, cores: frozenset[int] | None, nice: int, limits: ExplainLimits
    ) -> None:
        self._store = store
        self._cores = cores
        self._nice = nice
        self._limits = limits
        self._context = multiprocessing.get_context("spawn")
        self._executor: ProcessPoolExecutor | None = None
        self._turn = asyncio.Lock()
        self._queued = 0
        # What became of each explanation asked for: what /metrics counts.
        self.outcomes: Counter[str] = Counter()
        # The explanation computing now: a client that hangs up leaves it running (a process
        # can't be interrupted cheaply), and the next one waits for it.
        self._running: asyncio.Future[Explanation] | None = None

    @property
    def queued(self) -> int:
        """Explanations running or waiting their turn."""
        return self._queued

    async def explain(self, rows: Rows) -> Explanation:
        outcome = "refused"  # the rows or the model: a 4xx
        try:
            explanation = await self._queued_explanation(rows)
        except asyncio.CancelledError:
            outcome = "abandoned"
            raise
        except ExplainerBusy:
            outcome = "busy"
            raise
        except ExplanationTimedOut:
            outcome = "timed_out"
            raise
        except WorkerCrashed:
            outcome = "crashed"
            raise
        else:
            outcome = "computed"
            return explanation
        finally:
            self.outcomes[outcome] += 1

    async def _queued_explanation(self, rows: Rows) -> Explanation:
        if self._queued >= self._limits.queue:
            raise ExplainerBusy(
                f"{self._queued} explanation(s) are running or waiting (MAX_EXPLAIN_QUEUE="
                f"{self._limits.queue}); retry in a few seconds",
                headers={"Retry-After": str(self._limits.retry_after_seconds)},
            )
        self._queued += 1
        try:
            async with self._turn:  # cancelled here (the client left): never computed
                return await self._compute(rows)
        except asyncio.CancelledError:
            logger.info("an explanation of '%s' was abandoned by its client", rows.name)
            raise
        finally:
            self._queued -= 1

    async def _compute(self, rows: Rows) -> Explanation:
        if self._running is not None and not self._running.done():
            await asyncio.wait({self._running})  # one abandoned by its client
        task = InChild("explain_version", WORKER_MODULE)
        try:
            future = _submit(await self._ready_pool(), task, rows)
        except BrokenProcessPool:  # it died while idle
            logger.warning("the explanation process had died; starting a new one")
            self._replace()
            future = _submit(await self._ready_pool(), task, rows)
        running = self._running = asyncio.wrap_future(future)
        try:
            return await asyncio.wait_for(
                asyncio.shield(running), timeout=self._limits.timeout_seconds
            )
        except TimeoutError:
            logger.warning("an explanation of '%s' ran out of time; stopping it", rows.name)
            self._kill()
            raise ExplanationTimedOut(
                f"the explanation of '{rows.name}' took longer than EXPLAIN_TIMEOUT_SECONDS="
                f"{self._limits.timeout_seconds:g} and was stopped: explain fewer rows",
                headers={"Retry-After": str(self._limits.retry_after_seconds)},
            ) from None
        except BrokenProcessPool:
            logger.warning("the explanation process died; starting a new one")
            self._replace()
            raise WorkerCrashed(
                f"the explanation process died while explaining '{rows.name}' (out of memory, or "
                "killed); the next explanation starts a new one, and the server kept serving"
            ) from None

    async def _ready_pool(self) -> ProcessPoolExecutor:
        """The pool, its process started."""
        if self._executor is not None:
            return self._executor
        self._executor = pool = ProcessPoolExecutor(
            max_workers=1,
            mp_context=self._context,
            initializer=InChild("initialize", WORKER_MODULE),
            initargs=(os.getpid(), self._store, self._nice, self._cores),
        )
        started = asyncio.wrap_future(_submit(pool, InChild("ready", WORKER_MODULE)))
        try:
            await asyncio.wait_for(asyncio.shield(started), timeout=START_SECONDS)
        except (TimeoutError, BrokenProcessPool):
            self._kill()
            raise WorkerCrashed(
                f"the explanation process did not start within {START_SECONDS:g} s; the next "
                "explanation tries again"
            ) from None
        return pool

    def _replace(self) -> None:
        """Drop the pool; the next explanation starts a new process."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def _kill(self) -> None:
        # CPython keeps no public handle on a pool's processes (3.14 adds terminate_workers).
        for process in (getattr(self._executor, "_processes", None) or {}).values():
            with contextlib.suppress(Exception):
                process.kill()
        self._replace()

    def close(self) -> None:
        self._kill()


def _submit(pool: ProcessPoolExecutor, function: InChild, *args: object) -> Future[Explanation]:
    future: Future[Explanation] = pool.submit(function, *args)
    return future
