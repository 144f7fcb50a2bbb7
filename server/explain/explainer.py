"""Explainer: explanations in one process of their own, on the trainings' cores.

Not a thread of the server: `shap`'s TreeSHAP holds the GIL for the whole of a forest's
explanation (seconds for 1000 rows), which would stop the event loop and every /predict with
it. The process reads each version's estimator itself (its tag checked, as /load does) and
keeps a few (with a forest's TreeExplainer); the server sends it rows and gets numbers back.
One explanation runs at a time; the next ones wait their turn. A process that dies answers
its request 500; the next explanation starts a new one.
It starts with the first explanation (its imports take seconds), not with the server: a
server that never explains never pays for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool

from server.errors import WorkerCrashed
from server.ml.explanations import Explanation, Rows
from server.store.files import ModelStore
from server.training.backends.child import InChild

WORKER_MODULE = "server.explain.worker"
logger = logging.getLogger("server.explain")


class Explainer:
    def __init__(self, store: ModelStore, cores: frozenset[int] | None, nice: int) -> None:
        self._store = store
        self._cores = cores
        self._nice = nice
        self._context = multiprocessing.get_context("spawn")
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=self._context,
                initializer=InChild("initialize", WORKER_MODULE),
                initargs=(os.getpid(), self._store, self._nice, self._cores),
            )
        return self._executor

    async def explain(self, rows: Rows) -> Explanation:
        future = self._pool().submit(InChild("explain_version", WORKER_MODULE), rows)
        try:
            return await asyncio.wrap_future(future)
        except BrokenProcessPool:
            logger.warning("the explanation process died; starting a new one")
            self._replace()
            raise WorkerCrashed(
                f"the explanation process died while explaining '{rows.name}' (out of memory, or "
                "killed); the next explanation starts a new one, and the server kept serving"
            ) from None

    def _replace(self) -> None:
        """Drop the pool; the next explanation starts a new process."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    def close(self) -> None:
        # CPython keeps no public handle on a pool's processes (3.14 adds terminate_workers).
        for process in (getattr(self._executor, "_processes", None) or {}).values():
            with contextlib.suppress(Exception):
                process.kill()
        self._replace()
