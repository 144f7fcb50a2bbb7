"""Registry: the models loaded for inference, capped at MAX_INFERENCE_MODELS.

Every check-and-change of the loaded set happens in the event loop without an await in the
middle, so concurrent requests can't both take the last place. A load in progress holds its
place (it counts against the cap) until it succeeds or fails; a second load of the same name
waits for the first instead of reading the file again.

Each loaded model is served through its own `PredictionBatcher`.
"""

from __future__ import annotations

import asyncio

from server.errors import CapacityReached
from server.inference.batching import BatchingSettings, PredictionBatcher
from server.inference.compiled.choice import RuntimeSetting
from server.inference.loaded import read_model
from server.metrics import Metrics
from server.store.files import ModelStore


class Registry:
    def __init__(
        self,
        store: ModelStore,
        max_models: int,
        batching: BatchingSettings,
        metrics: Metrics,
        runtime: RuntimeSetting = "auto",
    ) -> None:
        self._store = store
        self._runtime = runtime
        self._max_models = max_models
        self._batching = batching
        self._metrics = metrics
        self._loaded: dict[str, PredictionBatcher] = {}
        self._loading: dict[str, asyncio.Task[None]] = {}

    @property
    def max_models(self) -> int:
        return self._max_models

    def loaded_names(self) -> list[str]:
        return sorted(self._loaded)

    def is_loaded(self, name: str) -> bool:
        return name in self._loaded

    def get(self, name: str) -> PredictionBatcher | None:
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
            model = await asyncio.to_thread(read_model, self._store, name, self._runtime)
            self._loaded[name] = PredictionBatcher(
                model, self._batching, self._metrics.prediction_counter(model.model_type)
            )
        finally:
            del self._loading[name]

    async def unload(self, name: str) -> bool:
        """Drop `name` (after any load of it in progress); in-flight predictions finish.
        True if a model was loaded and is now dropped."""
        pending = self._loading.get(name)
        if pending is not None:
            await asyncio.wait([pending])
        return self._loaded.pop(name, None) is not None
