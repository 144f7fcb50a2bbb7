"""ModelService: the contract's operations, composed from the store, the trainer and the registry.

The rules that span parts live here (a name in training can't be loaded or removed; a fit's
name must be free on disk and in training), so that the routes only translate HTTP.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np

from server.algorithms import refuse_missing, resolve
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
from server.inference.registry import Registry
from server.ingest import EvaluateInput, Features, FitInput
from server.ingest.features import MatrixFeatures
from server.scoring import check_holdout
from server.store.files import ModelStore
from server.training.jobs import Job
from server.training.trainer import Trainer
from server.training.worker import Holdout, TrainingRequest

# Requests with more rows than this are matched to the model's columns in a thread.
INLINE_MATCH_ROWS = 1000


def _encode_labels(X: np.ndarray, y: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """y as indices into its sorted distinct labels, and those labels."""
    if len(X) != len(y):
        raise InvalidInput(f"X has {len(X)} rows but y has {len(y)} labels")
    classes, encoded = np.unique(np.asarray(y), return_inverse=True)
    if len(classes) < 2:
        raise InvalidInput(f"y needs at least two distinct classes, got {classes.tolist()}")
    return encoded.astype(np.int64), classes.tolist()


async def _matrix_for(model: LoadedModel, features: Features) -> np.ndarray:
    """The rows of a file or of records in the model's column order (matched by name); a
    big request is matched in a thread."""
    if features.rows <= INLINE_MATCH_ROWS:
        return features.matrix_for(model.name, model.feature_names)
    return await asyncio.to_thread(features.matrix_for, model.name, model.feature_names)


class ModelService:
    def __init__(
        self, store: ModelStore, trainer: Trainer, registry: Registry, compile_models: bool = True
    ) -> None:
        self.store = store
        self.trainer = trainer
        self.registry = registry
        self.compile_models = compile_models  # INFERENCE_RUNTIME=auto
        # Models whose files passed a stat but failed to load: GET /models says so.
        self._load_failures: dict[str, str] = {}

    # -- training ----------------------------------------------------------------------------
    def start_fit(self, request: FitInput) -> Job:
        """Check the fit and start its job, or refuse at once (409, 422, 503)."""
        config = request.config
        algorithm = resolve(config.model_type)
        hyperparameters = algorithm.effective_hyperparameters(config.hyperparameters)
        y_encoded, classes = _encode_labels(request.X, request.y)
        field = "X" if request.feature_names is None else "the file"
        refuse_missing(algorithm, request.X, request.feature_names, field)
        held_out = None
        if config.validation_fraction is not None:
            check_holdout(y_encoded, config.validation_fraction)
            held_out = Holdout(config.validation_fraction, config.validation_seed)
        training = TrainingRequest(
            name=config.name,
            model_type=algorithm.name,
            hyperparameters=hyperparameters,
            X=request.X,
            y_encoded=y_encoded,
            classes=classes,
            feature_names=request.feature_names,
            holdout=held_out,
            compile=self.compile_models,
        )
        # No await between this check and the trainer's claim of a slot: for the event loop
        # they are one step, so of racing fits with one name exactly one trains.
        if self.store.exists(config.name):
            raise ModelExists(f"model '{config.name}' exists already; POST /remove it first")
        return self.trainer.start_job(training, config.max_seconds)

    async def wait(self, job: Job) -> dict[str, Any]:
        return await self.trainer.wait(job)

    def job(self, job_id: str) -> Job:
        return self.trainer.job(job_id)

    def jobs(self) -> list[Job]:
        return self.trainer.jobs()

    async def cancel(self, job_id: str) -> Job:
        return await self.trainer.cancel(job_id)

    # -- inference ---------------------------------------------------------------------------
    async def load(self, name: str) -> None:
        if self.trainer.is_training(name):
            raise ModelBusy(f"model '{name}' is still training; load it once /fit has answered")
        if not self.store.exists(name):
            raise ModelNotFound(name)
        try:
            await self.registry.load(name)
        except BrokenModel as error:
            self._load_failures[name] = error.detail  # shown by GET /models from now on
            raise
        self._load_failures.pop(name, None)

    async def unload(self, name: str) -> None:
        known = self.registry.is_loaded(name) or self.trainer.is_training(name)
        if not known and not self.store.exists(name):
            raise ModelNotFound(name)
        if await self.registry.unload(name):
            await asyncio.to_thread(release_unused_memory)

    def _loaded(self, name: str) -> PredictionBatcher:
        batcher = self.registry.get(name)
        if batcher is None:
            if self.store.exists(name) or self.trainer.is_training(name):
                raise NotLoaded(name)
            raise ModelNotFound(name)
        return batcher

    async def predict(self, name: str, features: Features, probabilities: bool) -> dict[str, Any]:
        batcher = self._loaded(name)
        if isinstance(features, MatrixFeatures):  # the hot path: no coroutine, no matching
            X = features.X
        else:
            X = await _matrix_for(batcher.model, features)
        return await batcher.predict(X, probabilities)

    async def evaluate(self, request: EvaluateInput) -> dict[str, Any]:
        model = self._loaded(request.config.name).model
        X = await _matrix_for(model, request.features)
        return await asyncio.to_thread(model.evaluate, X, request.y)

    # -- removal -----------------------------------------------------------------------------
    async def remove(self, name: str) -> None:
        if self.trainer.is_training(name):
            raise ModelBusy(
                f"model '{name}' is being trained right now; remove it once /fit has answered"
            )
        if not self.store.exists(name):
            raise ModelNotFound(name)
        was_loaded = await self.registry.unload(name)
        # No await between here and the deletion: a load that starts now finds no model.
        self._delete(name)
        if was_loaded:
            await asyncio.to_thread(release_unused_memory)

    async def remove_all(self) -> dict[str, list[str]]:
        removed, any_loaded = [], False
        for name in self.store.names():
            any_loaded |= await self.registry.unload(name)
            try:
                self._delete(name)
            except ModelNotFound:  # removed meanwhile by a concurrent /remove
                continue
            removed.append(name)
        if any_loaded:
            await asyncio.to_thread(release_unused_memory)
        return {"removed": removed, "training": sorted(self.trainer.training())}

    def _delete(self, name: str) -> None:
        self.store.delete(name)
        self._load_failures.pop(name, None)

    # -- what exists -------------------------------------------------------------------------
    def _with_status(self, info: dict[str, Any]) -> dict[str, Any]:
        name = info["name"]
        if info.get("status") == "broken":
            return info
        if name in self._load_failures:
            return {**info, "status": "broken", "error": self._load_failures[name]}
        batcher = self.registry.get(name)
        if batcher is None:
            return {**info, "status": "trained"}
        return {**info, "status": "loaded", **batcher.model.choice.describe()}

    def models(self) -> list[dict[str, Any]]:
        found = {info["name"]: self._with_status(info) for info in self.store.list_models()}
        found.update(self.trainer.training())
        return [found[name] for name in sorted(found)]

    def model(self, name: str) -> dict[str, Any]:
        training = self.trainer.training()
        if name in training:
            return training[name]
        if not self.store.exists(name):
            raise ModelNotFound(name)
        return self._with_status(self.store.describe(name))

    # -- capacity, as the scrape-time gauges of server.metrics read it -------------------------
    def training_slots(self) -> int:
        return self.trainer.slot_count

    def training_slots_busy(self) -> int:
        return self.trainer.busy

    def models_loaded(self) -> int:
        return len(self.registry.loaded_names())

    def models_loaded_max(self) -> int:
        return self.registry.max_models

    def status(self) -> dict[str, Any]:
        running = self.trainer.running()
        slots = self.trainer.slot_count
        return {
            "training": {
                **self.trainer.backend.describe(),
                "cores": slots + 1,
                "slots": slots,
                "active": self.trainer.busy,
                "models": sorted(job.name for job in running),
                "jobs": [
                    {"id": job.id, "name": job.name, "progress": job.progress()} for job in running
                ],
            },
            "inference": {
                "max_models": self.registry.max_models,
                "loaded": self.registry.loaded_names(),
            },
        }
