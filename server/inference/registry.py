"""Registry: the models loaded for inference, capped at MAX_INFERENCE_MODELS.

Every check-and-change of the loaded set happens in the event loop without an await in the
middle, so concurrent requests can't both take the last place. A load in progress holds its
place (it counts against the cap) until it succeeds or fails; a second load of the same name
waits for the first instead of reading the file again.

Each loaded model is served through its own `PredictionBatcher`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

from server.errors import CapacityReached, UntrustedModel
from server.inference.batching import BatchingSettings, PredictionBatcher
from server.inference.loaded import LoadedModel
from server.metrics import Metrics

Key = tuple[str, int]  # a model name and one of its versions


def label(key: Key) -> str:
    """A loaded version as a message names it: version 1 by its name alone, as before."""
    return key[0] if key[1] == 1 else f"{key[0]} (version {key[1]})"


# Blocking: reads one version of a name from the store (server.inference.loaded.read_model,
# with the runtime and estimator settings bound by the composition).
ModelReader = Callable[[str, int], LoadedModel]


class Registry:
    def __init__(
        self,
        read: ModelReader,
        max_models: int,
        batching: BatchingSettings,
        metrics: Metrics,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._read_model = read
        self._on_change = on_change  # the loaded set changed (server.replication publishes it)
        self._max_models = max_models
        self._batching = batching
        self._metrics = metrics
        self._loaded: dict[Key, PredictionBatcher] = {}
        self._loading: dict[Key, asyncio.Task[PredictionBatcher]] = {}

    @property
    def max_models(self) -> int:
        return self._max_models

    def loaded(self) -> list[Key]:
        return sorted(self._loaded)

    def is_loaded(self, key: Key) -> bool:
        return key in self._loaded

    def get(self, key: Key) -> PredictionBatcher | None:
        return self._loaded.get(key)

    def versions_loaded(self, name: str) -> list[int]:
        """Versions of `name` loaded or being loaded."""
        return sorted({v for n, v in [*self._loaded, *self._loading] if n == name})

    async def load(
        self, key: Key, over_cap: bool = False, capped: bool = True
    ) -> PredictionBatcher:
        """Load a version (once: a second load of it waits for the first). `over_cap`: a swap
        may hold one version above the cap for its duration; `capped=False`: a replica loads
        what its primary serves, which the primary's cap bounds."""
        if key in self._loaded:
            return self._loaded[key]
        task = self._loading.get(key)
        if task is None:
            taken = [*self._loaded, *self._loading]
            if capped and len(taken) >= self._max_models + (1 if over_cap else 0):
                raise CapacityReached(
                    f"cannot load '{key[0]}': {self._max_models} model(s) are loaded already "
                    f"({', '.join(label(k) for k in sorted(taken))}); POST /unload one of them "
                    "first"
                )
            # A task of its own, so that a client hanging up mid-load can't leave a place
            # reserved or a half-registered model behind.
            task = asyncio.get_running_loop().create_task(self._read(key))
            task.add_done_callback(lambda done: done.cancelled() or done.exception())
            self._loading[key] = task
        # What this load read, even if an unload waiting on the same task dropped it first.
        return await asyncio.shield(task)

    async def _read(self, key: Key) -> PredictionBatcher:
        name, version = key
        try:
            model = await asyncio.to_thread(self._read_model, name, version)
            model = dataclasses.replace(
                model, count_unseen=self._metrics.unseen_counter(name, version)
            )
            batcher = PredictionBatcher(
                model, self._batching, self._metrics.prediction_counter(model.model_type)
            )
            self._loaded[key] = batcher
            self._on_change()
            return batcher
        except UntrustedModel:
            self._metrics.untrusted_load_refused()
            raise
        finally:
            del self._loading[key]

    async def unload(self, key: Key) -> PredictionBatcher | None:
        """Drop a version (after any load of it in progress); requests it is answering
        finish (`until_idle` on what this returns). None if it was not loaded."""
        pending = self._loading.get(key)
        if pending is not None:
            await asyncio.wait([pending])
        batcher = self._loaded.pop(key, None)
        if batcher is not None:
            self._on_change()
        return batcher

    async def unload_name(self, name: str) -> bool:
        """Drop every loaded version of `name`; True if any was loaded."""
        dropped = [await self.unload((name, version)) for version in self.versions_loaded(name)]
        return any(batcher is not None for batcher in dropped)
