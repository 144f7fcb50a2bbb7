"""ModelService: the contract's operations, composed from the store, the trainer, the
registry and the versions.

The rules that span parts live here (a name in training can't be removed; a fit's name must
be free on disk and in training, unless it trains a new version), so that the routes only
translate HTTP. What exists and in which state is told by server.service.catalog.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from server.errors import (
    BrokenModel,
    InvalidInput,
    ModelBusy,
    ModelExists,
    ModelNotFound,
    NotLoaded,
)
from server.inference.batching import PredictionBatcher
from server.inference.loaded import LoadedModel
from server.inference.memory import release_unused_memory
from server.inference.registry import Key, Registry
from server.ingest import EvaluateInput, Features, FitInput, PredictInput
from server.ingest.features import MatrixFeatures
from server.monitoring.monitor import Monitor
from server.service.fitting import checked_type, labelled, next_version, promoted
from server.service.versions import Versions
from server.store.files import ModelStore
from server.training.jobs import Job
from server.training.request import Holdout, TrainingRequest
from server.training.trainer import Trainer

# Requests with more rows than this are matched to the model's columns in a thread.
INLINE_MATCH_ROWS = 1000


async def matrix_for(model: LoadedModel, features: Features) -> np.ndarray:
    """The rows of a file or of records in the model's column order (matched by name), its
    categorical cells as the model's codes (unseen levels counted); a big request is
    matched in a thread."""
    columns = model.model_columns
    if features.rows <= INLINE_MATCH_ROWS:
        encoded = features.encoded_for(model.name, columns)
    else:
        encoded = await asyncio.to_thread(features.encoded_for, model.name, columns)
    model.note_unseen(encoded.unseen)
    return encoded.X


def key_values(
    model: LoadedModel, features: Features, key: str, excluded: frozenset[str]
) -> list[str | None]:
    """The request's key column (config.key): never one of the model's features, nor a
    column the operator keeps out of the capture (their exclusion wins)."""
    if key in model.model_columns.names:
        raise InvalidInput(
            f"config.key is {key!r}, a feature of model '{model.name}': a key names rows, the "
            "model never sees it"
        )
    if key in excluded:
        raise InvalidInput(
            f"config.key is {key!r}, a column that capture_exclude keeps out of the capture of "
            f"model '{model.name}': it is never written, as a key either"
        )
    return features.key_values(key)


class ModelService:
    def __init__(
        self,
        store: ModelStore,
        trainer: Trainer,
        registry: Registry,
        versions: Versions,
        compile_models: bool = True,
        max_categories: int = 1000,
    ) -> None:
        self.store = store
        self.trainer = trainer
        self.registry = registry
        self.versions = versions
        self.compile_models = compile_models  # INFERENCE_RUNTIME=auto
        self.max_categories = max_categories
        # Versions whose files passed a stat but failed to load: GET /models says so.
        self.load_failures: dict[Key, str] = {}
        # Names an AutoML search will save its winner under (server.automl): taken.
        self.reserved: set[str] = set()
        # On a replica: where a /load goes, as a 409 for a version not loaded says.
        self.primary_hint = ""
        # What /predict hands sampled requests to (server.monitoring); set at start-up.
        self.monitor: Monitor | None = None

    # -- training ----------------------------------------------------------------------------
    def start_fit(self, request: FitInput) -> Job:
        """Check the fit and start its job, or refuse at once (409, 422, 503)."""
        config = request.config
        table = labelled(
            request, config.validation_fraction, config.validation_seed, self.max_categories
        )
        algorithm, hyperparameters = checked_type(config.model_type, config.hyperparameters, table)
        held_out = None
        if config.validation_fraction is not None:
            held_out = Holdout(config.validation_fraction, config.validation_seed)
        # No await from here to the trainer's claim of a slot: for the event loop they are
        # one step, so of racing fits with one name exactly one trains.
        exists = self.check_free(config.name, config.new_version)
        version = next_version(self.store, self.versions, config.name, exists)
        training = TrainingRequest(
            name=config.name,
            model_type=algorithm.name,
            hyperparameters=hyperparameters,
            X=table.X,
            y_encoded=table.y_encoded,
            classes=table.classes,
            feature_names=table.feature_names,
            columns=table.columns,
            holdout=held_out,
            compile=self.compile_models,
            version=version,
            trained_from_capture=request.provenance,
        )

        async def promote(metadata: dict[str, Any]) -> dict[str, Any]:
            return await promoted(self.versions, config.name, version, metadata)

        after_save = promote if config.promote and exists else None
        return self.trainer.start_job(training, config.max_seconds, after_save)

    def check_free(self, name: str, new_version: bool) -> bool:
        """Whether the name exists; 409 if it does (without `new_version`), or if a fit or
        a search is training it."""
        exists = self.store.exists(name)
        if exists and not new_version:
            raise ModelExists(
                f"model '{name}' exists already; POST /remove it first, or train its next "
                'version with "new_version": true'
            )
        self.refuse_busy(name, exists)
        return exists

    def refuse_busy(self, name: str, exists: bool) -> None:
        """409 if a fit or an AutoML search is training (a new version of) this name."""
        what = "a new version of model" if exists else "model"
        if self.trainer.is_training(name):
            raise ModelBusy(f"{what} '{name}' is being trained right now")
        if name in self.reserved:
            raise ModelBusy(f"{what} '{name}' is the aim of an AutoML search running now")

    async def wait(self, job: Job) -> dict[str, Any]:
        return await self.trainer.wait(job)

    def job(self, job_id: str) -> Job:
        return self.trainer.job(job_id)

    def jobs(self) -> list[Job]:
        return self.trainer.jobs()

    async def cancel(self, job_id: str) -> Job:
        return await self.trainer.cancel(job_id)

    # -- inference ---------------------------------------------------------------------------
    def _key(self, name: str, version: int | None, alias: str | None) -> Key:
        """The (name, version) a request means; 404 for an unknown name, version or alias,
        409 while the name's first version is still training."""
        if not self.store.exists(name):
            if self.trainer.is_training(name):
                raise ModelBusy(f"model '{name}' is still training; use it once /fit has answered")
            raise ModelNotFound(name)
        return name, self.versions.resolve(name, version, alias)

    async def load(self, name: str, version: int | None, alias: str | None) -> int:
        key = self._key(name, version, alias)
        self.versions.require(*key)
        try:
            await self.registry.load(key)
        except BrokenModel as error:
            self.load_failures[key] = error.detail  # shown by GET /models from now on
            raise
        self.load_failures.pop(key, None)
        return key[1]

    async def unload(self, name: str, version: int | None, alias: str | None) -> int:
        key = self._key(name, version, alias)
        if not self.registry.is_loaded(key):
            self.versions.require(*key)
        was_loaded = await self.registry.unload(key) is not None  # holding it would keep it
        if was_loaded:
            await asyncio.to_thread(release_unused_memory)
        return key[1]

    def loaded(self, name: str, version: int | None, alias: str | None) -> PredictionBatcher:
        """The batcher of a loaded version: 404 for an unknown one, 409 if not loaded."""
        pointers = self.versions.cached(name)
        if pointers is not None and version is None and alias is None:  # the hot path
            batcher = self.registry.get((name, pointers.current))
            if batcher is not None:
                return batcher
        key = self._key(name, version, alias)
        batcher = self.registry.get(key)
        if batcher is None:
            self.versions.require(*key)
            raise NotLoaded(name, key[1], version is None and alias is None, self.primary_hint)
        return batcher

    async def predict(self, request: PredictInput, request_id: str = "") -> dict[str, Any]:
        config, features = request.config, request.features
        batcher = self.loaded(config.name, config.version, config.alias)
        model = batcher.model
        if isinstance(features, MatrixFeatures) and features.X is not None:
            # the hot path: no coroutine, no matching (numbers for a model of numbers)
            if model.columns is None or model.columns.all_numeric:
                X = features.X
            else:
                X = await matrix_for(model, features)
        else:
            X = await matrix_for(model, features)
        keys = None
        if config.key is not None:
            excluded = self.monitor.setting(config.name).excluded if self.monitor else frozenset()
            keys = key_values(model, features, config.key, excluded)
        answer = await batcher.predict(X, config.probabilities)
        if self.monitor is not None and (chosen := self.monitor.sampled(config.name)):
            # handed over as it is: the capture's writer computes what it lacks
            self.monitor.offer(
                model, model.version, config.name, features, X, answer, request_id, keys, chosen
            )
        return answer

    async def evaluate(self, request: EvaluateInput) -> dict[str, Any]:
        config = request.config
        model = self.loaded(config.name, config.version, config.alias).model
        X = await matrix_for(model, request.features)
        return await asyncio.to_thread(model.evaluate, X, request.y)

    # -- removal -----------------------------------------------------------------------------
    async def remove(self, name: str) -> None:
        self._refuse_training(name)
        if not self.store.exists(name):
            raise ModelNotFound(name)
        # After any move of its pointers in progress (a promote must not write pointers
        # into a folder that is gone), and before the next.
        async with self.versions.moving(name):
            self._refuse_training(name)
            if not self.store.exists(name):
                raise ModelNotFound(name)
            # The one write first: a full disk fails it with the model still serving.
            await asyncio.to_thread(self.store.keep_numbers, name)
            was_loaded = await self.registry.unload_name(name)
            # No await between here and the deletion: a load that starts now finds no model.
            self._delete(name)
        if self.monitor is not None:  # its captured rows and labels too
            await self.monitor.forget(name)
        if was_loaded:
            await asyncio.to_thread(release_unused_memory)

    def _refuse_training(self, name: str) -> None:
        if self.trainer.is_training(name) or name in self.reserved:
            raise ModelBusy(
                f"model '{name}' is being trained right now; remove it once /fit has answered"
            )

    async def remove_all(self) -> dict[str, list[str]]:
        removed, any_loaded = [], False
        for name in self.store.names():
            try:
                async with self.versions.moving(name):
                    if self.trainer.is_training(name) or name in self.reserved:
                        continue  # training: kept whole
                    await asyncio.to_thread(self.store.keep_numbers, name)  # may fail: first
                    any_loaded |= await self.registry.unload_name(name)
                    self._delete(name)
            except ModelNotFound:  # removed meanwhile by a concurrent /remove
                continue
            removed.append(name)
            if self.monitor is not None:
                await self.monitor.forget(name)
        if any_loaded:
            await asyncio.to_thread(release_unused_memory)
        return {"removed": removed, "training": sorted(self.trainer.training())}

    def _delete(self, name: str) -> None:
        self.store.delete(name)
        self.versions.forget(name)
        for key in [key for key in self.load_failures if key[0] == name]:
            del self.load_failures[key]

    async def remove_version(self, name: str, version: int) -> None:
        if not self.store.exists(name):
            raise ModelNotFound(name)
        await self.versions.delete(name, version)
        self.load_failures.pop((name, version), None)
