"""Registry: the models loaded for inference, capped at MAX_INFERENCE_MODELS.

Every check-and-change of the loaded set happens in the event loop without an await in the
middle, so concurrent requests can't both take the last place. A load in progress holds its
place (it counts against the cap) until it succeeds or fails; a second load of the same name
waits for the first instead of reading the file again.

A model is a `LoadedModel`: the estimator, the original labels it predicts indices into, and
what its library needs to predict on one thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.algorithms import resolve
from server.errors import CapacityReached, InvalidInput
from server.storage import ModelStore


@dataclass(frozen=True)
class LoadedModel:
    name: str
    estimator: Any
    classes: np.ndarray  # original labels; the estimator predicts indices into it
    n_features: int
    predict_kwargs: dict[str, Any]

    def predict(self, X: np.ndarray, probabilities: bool) -> dict[str, Any]:
        """Blocking: called in a worker thread, never on the event loop."""
        if X.shape[1] != self.n_features:
            raise InvalidInput(
                f"model '{self.name}' expects {self.n_features} features per row, got {X.shape[1]}"
            )
        try:
            return self._predict(X, probabilities)
        except Exception as error:  # the estimator refused this input
            raise InvalidInput(
                f"model '{self.name}' could not predict: {type(error).__name__}: {error}"
            ) from None

    def _predict(self, X: np.ndarray, probabilities: bool) -> dict[str, Any]:
        answer: dict[str, Any] = {"name": self.name}
        if probabilities:
            proba = np.asarray(self.estimator.predict_proba(X, **self.predict_kwargs))
            answer["predictions"] = self.classes[proba.argmax(axis=1)].tolist()
            answer["probabilities"] = proba.tolist()
            answer["classes"] = self.classes.tolist()
        else:
            indices = np.asarray(self.estimator.predict(X, **self.predict_kwargs)).reshape(-1)
            answer["predictions"] = self.classes[indices.astype(np.int64)].tolist()
        return answer


def _read_model(store: ModelStore, name: str) -> LoadedModel:
    bundle = store.load(name)
    return LoadedModel(
        name=name,
        estimator=bundle["estimator"],
        classes=np.asarray(bundle["classes"]),
        n_features=int(bundle["n_features"]),
        predict_kwargs=dict(resolve(bundle["model_type"]).predict_kwargs),
    )


class Registry:
    def __init__(self, store: ModelStore, max_models: int) -> None:
        self._store = store
        self._max_models = max_models
        self._loaded: dict[str, LoadedModel] = {}
        self._loading: dict[str, asyncio.Task[None]] = {}

    @property
    def max_models(self) -> int:
        return self._max_models

    def loaded_names(self) -> list[str]:
        return sorted(self._loaded)

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def get(self, name: str) -> LoadedModel | None:
        return self._loaded.get(name)

    async def load(self, name: str) -> None:
        if name in self._loaded:
            return
        task = self._loading.get(name)
        if task is None:
            if len(self._loaded) + len(self._loading) >= self._max_models:
                taken = sorted([*self._loaded, *self._loading])
                raise CapacityReached(
                    f"cannot load '{name}': {self._max_models} model(s) are loaded already "
                    f"({', '.join(taken)}); POST /unload one of them first"
                )
            # A task of its own, so that a client hanging up mid-load can't leave a place
            # reserved or a half-registered model behind.
            task = asyncio.get_running_loop().create_task(self._read(name))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._loading[name] = task
        await asyncio.shield(task)

    async def _read(self, name: str) -> None:
        try:
            self._loaded[name] = await asyncio.to_thread(_read_model, self._store, name)
        finally:
            del self._loading[name]

    async def unload(self, name: str) -> None:
        """Drop `name` (after any load of it in progress); in-flight predictions finish."""
        pending = self._loading.get(name)
        if pending is not None:
            await asyncio.wait([pending])
        self._loaded.pop(name, None)
