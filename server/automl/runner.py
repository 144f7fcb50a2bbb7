"""AutoML: searches started, run and ended.

A search runs its candidates as ordinary training jobs (server.training), each on a free
slot, local or Dask, with its progress, limits and cancel; never more at once than slots
are free. Sharing with users: a user's /fit that finds no free slot is answered 503 at once,
as ever, and the search then leaves the next slot that frees to that user for as long as
the 503's Retry-After said (Trainer.reserved_for_user).

Every candidate trains on the same rows and is scored on the same held-out ones (the
stratified split of `validation_fraction` with `seed`). A candidate's model comes back to
the server as bytes and only the best so far is kept, in memory; at the end the winner is
saved (signed) under the search's name, and nothing of the others ever touches the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.algorithms import resolve
from server.automl.search import CandidateRun, Search
from server.automl.space import EARLY_STOPPING_ROUNDS, candidates
from server.errors import InvalidInput, JobFinished, NoFreeSlot
from server.ingest import FitInput
from server.service.fitting import checked_type, labelled, next_version, promoted
from server.service.operations import ModelService
from server.store.bundle import public
from server.tables.columns import Columns
from server.training.background import BackgroundTasks
from server.training.request import Holdout, TrainingRequest

logger = logging.getLogger(__name__)

HISTORY = 20  # finished searches kept in memory
WAKE_SECONDS = 0.2  # how often a search waiting for a slot looks again


@dataclass
class _Table:
    X: np.ndarray
    y_encoded: np.ndarray
    classes: list[Any]
    columns: Columns
    holdout: Holdout
    model_types: list[str]
    promote: bool


class AutoML:
    def __init__(self, service: ModelService) -> None:
        self._service = service
        self._trainer = service.trainer
        self._searches: OrderedDict[str, Search] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._best: dict[str, tuple[bytes, bytes | None]] = {}  # per search: its best model
        self._followers = BackgroundTasks()  # one per running candidate: kept alive

    def searches(self) -> list[Search]:
        return list(reversed(self._searches.values()))  # newest first

    def search(self, search_id: str) -> Search | None:
        return self._searches.get(search_id)

    # -- starting ----------------------------------------------------------------------------
    def start(self, request: FitInput) -> Search:
        """Check the request and start the search, or refuse at once (409, 422)."""
        config: Any = request.config
        table = self._table(request)
        metric = config.metric or ("roc_auc" if len(table.classes) == 2 else "log_loss")
        service = self._service
        service.check_free(config.name, config.new_version)
        deadline = None
        if config.max_runtime_secs is not None:
            deadline = time.monotonic() + config.max_runtime_secs
        search = Search(config.name, metric, config.max_models, deadline)
        service.reserved.add(config.name)
        self._searches[search.id] = search
        task = asyncio.get_running_loop().create_task(self._run(search, table, config.seed))
        self._tasks[search.id] = task
        self._forget_old()
        return search

    def _table(self, request: FitInput) -> _Table:
        config: Any = request.config
        table = labelled(
            request, config.validation_fraction, config.seed, self._service.max_categories
        )
        try:
            types = list(dict.fromkeys(resolve(t).name for t in config.model_types))
        except InvalidInput as error:
            raise InvalidInput(f"config.model_types: {error.detail}") from None
        if np.isnan(table.X).any():
            if "model_types" in config.model_fields_set:  # asked for by name: say why not
                for model_type in types:
                    checked_type(model_type, {}, table)
            types = [t for t in types if resolve(t).handles_missing or resolve(t).imputes]
        return _Table(
            X=table.X,
            y_encoded=table.y_encoded,
            classes=table.classes,
            columns=table.columns,
            holdout=Holdout(config.validation_fraction, config.seed),
            model_types=types,
            promote=config.promote,
        )

    def _forget_old(self) -> None:
        finished = [s.id for s in self._searches.values() if s.finished]
        for search_id in finished[: max(0, len(finished) - HISTORY)]:
            del self._searches[search_id]

    # -- running -----------------------------------------------------------------------------
    def _budget_left(self, search: Search) -> bool:
        if search.planned is not None and len(search.candidates) >= search.planned:
            return False
        return search.deadline is None or time.monotonic() < search.deadline

    async def _run(self, search: Search, table: _Table, seed: int) -> None:
        drawn: Iterator[tuple[str, dict[str, Any]]] = candidates(table.model_types, seed)
        try:
            while self._budget_left(search):
                if self._trainer.free == 0 or self._trainer.reserved_for_user():
                    await self._wait_for_change(search)
                    continue
                model_type, hyperparameters = next(drawn)
                self._start_candidate(search, table, model_type, hyperparameters)
            while any(c.state == "running" for c in search.candidates):
                if search.deadline is not None and time.monotonic() >= search.deadline:
                    await self._stop_running(search)  # the budget is spent: what ran is lost
                    break
                await self._wait_for_change(search)
            await self._finish(search, table)
        except asyncio.CancelledError:
            await self._stop_running(search)
            search.end("cancelled")
            raise
        except Exception as error:  # never a silent search: say what happened
            logger.exception("AutoML search %s failed", search.id)
            await self._stop_running(search)
            search.error = f"{type(error).__name__}: {error}"
            search.end("failed")
        finally:
            self._best.pop(search.id, None)
            self._service.reserved.discard(search.name)
            self._tasks.pop(search.id, None)

    async def _wait_for_change(self, search: Search) -> None:
        """Until a candidate ends, a slot may have freed, or the deadline."""
        timeout = WAKE_SECONDS
        if search.deadline is not None:
            timeout = max(0.0, min(timeout, search.deadline - time.monotonic()))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(search.next_change(search.version), timeout)

    def _start_candidate(
        self, search: Search, table: _Table, model_type: str, hyperparameters: dict[str, Any]
    ) -> None:
        run = CandidateRun(len(search.candidates) + 1, model_type, hyperparameters)
        search.candidates.append(run)
        algorithm = resolve(model_type)
        request = TrainingRequest(
            name=f"automl-{search.id[:8]}-{run.number}",
            model_type=algorithm.name,
            hyperparameters=algorithm.effective_hyperparameters(hyperparameters),
            X=table.X,
            y_encoded=table.y_encoded,
            classes=table.classes,
            feature_names=table.columns.feature_names,
            columns=table.columns,
            holdout=table.holdout,
            compile=self._service.compile_models,
            candidate=True,
            early_stopping_rounds=EARLY_STOPPING_ROUNDS
            if resolve(model_type).stops_early
            else None,
        )
        remaining = None if search.deadline is None else search.deadline - time.monotonic()

        async def keep(result: dict[str, Any]) -> dict[str, Any]:
            """The model's bytes to the search; the job's answer is its metadata only."""
            metadata = public(result["metadata"])
            try:
                run.metadata = {**metadata, "serving": result["metadata"].get("serving")}
                self._keep_if_best(search, run, result["model"])
            except Exception:  # the job must still end with JSON, never with the bytes
                logger.exception("AutoML search %s: keeping candidate %d", search.id, run.number)
                run.metadata = None
            return metadata

        try:
            job = self._trainer.start_job(request, remaining, keep)
        except NoFreeSlot:  # taken in between (a user's fit): wait for the next one
            search.candidates.pop()
            return
        run.state, run.job_id, run.started = "running", job.id, time.monotonic()
        search.changed()
        self._followers.spawn(self._follow(search, run, job))

    def _keep_if_best(
        self, search: Search, run: CandidateRun, model: tuple[bytes, bytes | None]
    ) -> None:
        """Keep this candidate's model if it ranks above every one finished before it (the
        leaderboard's own order, ties included)."""
        if run.score(search.metric) is None:
            return
        best = search.ranked()
        if not best or search.rank_key(run) < search.rank_key(best[0]):
            self._best[search.id] = model

    async def _follow(self, search: Search, run: CandidateRun, job: Any) -> None:
        await job.until_finished()
        run.ended = time.monotonic()
        run.state = job.state.value
        if job.error is not None:
            run.error = job.error.detail
        search.changed()

    async def _stop_running(self, search: Search) -> None:
        running = [c for c in search.candidates if c.state == "running" and c.job_id]
        for outcome in await asyncio.gather(
            *(self._trainer.cancel(c.job_id) for c in running if c.job_id),
            return_exceptions=True,
        ):
            if isinstance(outcome, Exception) and not isinstance(outcome, JobFinished):
                logger.warning("stopping an AutoML candidate: %r", outcome)
        for run in running:
            run.state = "cancelled" if run.state == "running" else run.state
        search.changed()

    async def _finish(self, search: Search, table: _Table) -> None:
        ranked = search.ranked()
        if not ranked or search.id not in self._best:
            errors = sorted({c.error for c in search.candidates if c.error})
            search.error = "no candidate succeeded" + (f": {errors[0]}" if errors else "")
            search.end("failed")
            return
        winner = ranked[0]
        assert winner.metadata is not None
        search.model = await self._save(search, table, winner)
        search.end("succeeded")

    async def _save(self, search: Search, table: _Table, winner: CandidateRun) -> dict[str, Any]:
        service, name = self._service, search.name
        exists = service.store.exists(name)
        version = next_version(service.store, service.versions, name, exists)
        model, onnx = self._best[search.id]
        assert winner.metadata is not None
        metadata = {
            **winner.metadata,
            "name": name,
            "automl": {"search": search.id, "candidate": winner.number, "metric": search.metric},
        }
        saved = await asyncio.to_thread(
            service.store.save_serialized, name, version, model, onnx, metadata
        )
        if exists and table.promote:
            saved = await promoted(service.versions, name, version, saved)
        return saved

    # -- stopping ----------------------------------------------------------------------------
    async def cancel(self, search: Search) -> None:
        task = self._tasks.get(search.id)
        if task is None:
            raise JobFinished(f"AutoML search '{search.id}' has already {search.state}")
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def close(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
