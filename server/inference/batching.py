"""Adaptive micro-batching: concurrent predictions for one model become one `predict` call.

A forest's predict costs about the same for 1 row as for 30 (the per-tree overhead
dominates), so under load, merging requests multiplies throughput. The batcher never makes a
lone request wait: with nothing in flight, a request runs at once. While a batch runs (in a
thread, off the event loop), new requests queue; when it is done, everything queued (up to
`max_rows` rows, and after waiting up to `window` seconds for more) goes in the next call.
The drain task is the batcher's only state besides the queue: a batch runs while it lives.
A model cheap enough to predict inline (LogisticRegression or a compiled forest on a few
rows) skips the thread: a hop would cost more than the prediction. A lone request runs at
once. When a second one is handled in the same turn of the event loop, requests are piling
up: they are merged as above, and the merged call still runs on the loop while its estimate
stays under the inline budget (one call and no hop: +12% requests/s at 8 connections,
bench/ceiling.py); a bigger one goes to the thread, so that predictions run on the other
core while the loop parses and answers (+22% to +35% requests/s at 32 connections).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from server.inference.compiled.runtimes import EstimatorNeeded

if TYPE_CHECKING:
    from server.inference.loaded import LoadedModel


@dataclass(frozen=True)
class BatchingSettings:
    max_rows: int  # most rows in one predict call
    window: float  # seconds a batch waits for more requests, under load only
    inline_budget: float  # predictions estimated below this many seconds run inline


@dataclass
class _Waiting:
    X: np.ndarray
    probabilities: bool
    answer: asyncio.Future[dict[str, Any]] = field(repr=False)


class PredictionBatcher:
    def __init__(
        self,
        model: LoadedModel,
        settings: BatchingSettings,
        count_rows: Callable[[int], None] = lambda rows: None,
    ) -> None:
        self.model = model
        self.settings = settings
        self._count_rows = count_rows  # metrics: rows of each predict call
        self._queue: deque[_Waiting] = deque()
        # The task that runs queued batches; the event loop only keeps a weak reference.
        self._drainer: asyncio.Task[None] | None = None
        # Set by a prediction in this turn of the event loop, cleared at the next one.
        self._predicted_this_turn = False
        # Requests being answered: a swap unloads this model once none is left.
        self.in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def queued(self) -> int:
        """Requests waiting for the next batch."""
        return len(self._queue)

    async def predict(self, X: np.ndarray, probabilities: bool) -> dict[str, Any]:
        self.in_flight += 1
        self._idle.clear()
        try:
            return await self._predict(X, probabilities)
        finally:
            self.in_flight -= 1
            if self.in_flight == 0:
                self._idle.set()

    async def until_idle(self) -> None:
        """Return once no request is being answered by this model."""
        await self._idle.wait()

    async def _predict(self, X: np.ndarray, probabilities: bool) -> dict[str, Any]:
        self.model.check_input(X)
        draining = self._drainer is not None and not self._drainer.done()
        cheap = self.model.estimated_seconds(len(X)) <= self.settings.inline_budget
        if cheap and not draining and not self._queue and self._alone_this_turn():
            result = await self._predict_here(X, probabilities)
            self._count_rows(len(X))
            return result
        answer: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._queue.append(_Waiting(X, probabilities, answer))
        if not draining:
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await answer

    async def _drain(self) -> None:
        window, max_rows = self.settings.window, self.settings.max_rows
        first = True
        while self._queue:
            if not first and window > 0 and self._queued_rows() < max_rows:
                await asyncio.sleep(window)  # under load only: gather a fuller batch
            first = False
            batch = self._take()
            for probabilities in (False, True):
                group = [
                    w for w in batch if w.probabilities is probabilities and not w.answer.done()
                ]
                if group:
                    await self._run(group, probabilities)

    async def _predict_here(self, X: np.ndarray, probabilities: bool) -> dict[str, Any]:
        """On the event loop; in a thread after all if the batch needs an estimator that is
        not read yet (server.inference.compiled.runtimes.LazyNativeRuntime)."""
        try:
            return self.model.predict(X, probabilities)
        except EstimatorNeeded:
            return await asyncio.to_thread(self.model.predict, X, probabilities)

    def _alone_this_turn(self) -> bool:
        """True for the first prediction in this turn of the event loop: the callback that
        clears the mark runs after every task already ready, so a request handled before it
        arrived together with this one."""
        if self._predicted_this_turn:
            return False
        self._predicted_this_turn = True
        asyncio.get_running_loop().call_soon(self._new_turn)
        return True

    def _new_turn(self) -> None:
        self._predicted_this_turn = False

    def _queued_rows(self) -> int:
        return sum(len(waiting.X) for waiting in self._queue)

    def _take(self) -> list[_Waiting]:
        first = self._queue.popleft()
        batch, rows = [first], len(first.X)
        while self._queue and rows + len(self._queue[0].X) <= self.settings.max_rows:
            waiting = self._queue.popleft()
            rows += len(waiting.X)
            batch.append(waiting)
        return batch

    async def _run(self, group: list[_Waiting], probabilities: bool) -> None:
        stacked = group[0].X if len(group) == 1 else np.vstack([w.X for w in group])
        try:
            if self.model.estimated_seconds(len(stacked)) <= self.settings.inline_budget:
                # Cheap even merged: one call here costs less than a hop to a thread.
                merged = await self._predict_here(stacked, probabilities)
            else:
                merged = await asyncio.to_thread(self.model.predict, stacked, probabilities)
        except Exception as error:
            if len(group) > 1:  # one request's rows may be at fault: each answers for its own
                for waiting in group:
                    await self._run([waiting], probabilities)
                return
            if not group[0].answer.done():
                group[0].answer.set_exception(error)
            return
        self._count_rows(len(stacked))
        start = 0
        for waiting in group:
            end = start + len(waiting.X)
            if not waiting.answer.done():  # its client may have gone
                waiting.answer.set_result(_slice(merged, start, end))
            start = end


def _slice(merged: dict[str, Any], start: int, end: int) -> dict[str, Any]:
    part = {**merged, "predictions": merged["predictions"][start:end]}
    if "probabilities" in merged:
        part["probabilities"] = merged["probabilities"][start:end]
    return part
