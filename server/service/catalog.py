"""What exists and in which state: models and their versions, the service's status, and the
capacity gauges that server.metrics reads at scrape time."""

from __future__ import annotations

from typing import Any

from server.errors import BrokenModel, ModelNotFound
from server.service.operations import ModelService


class Catalog:
    def __init__(self, service: ModelService) -> None:
        self._service = service
        self._store = service.store
        self._trainer = service.trainer
        self._registry = service.registry
        self._versions = service.versions

    # -- models --------------------------------------------------------------------------
    def _version_info(self, name: str, version: int) -> dict[str, Any]:
        info = self._store.describe(name, version)
        if info.get("status") in ("broken", "untrusted"):
            return info
        failure = self._service.load_failures.get((name, version))
        if failure is not None:
            return {**info, "status": "broken", "error": failure}
        batcher = self._registry.get((name, version))
        if batcher is None:
            return {**info, "status": "trained"}
        model = batcher.model
        described = {**info, "status": "loaded", **model.choice.describe()}
        if not model.model_columns.all_numeric:
            described["unseen_levels"] = dict(model.unseen)
        return described

    def _name_info(self, name: str) -> dict[str, Any]:
        """The name's current version, its pointers and any new version in training."""
        try:
            pointers = self._versions.describe(name)
        except BrokenModel as error:
            return {"name": name, "status": "broken", "error": error.detail}
        info = {**self._version_info(name, pointers["current_version"]), **pointers}
        training = self._trainer.training_version(name)
        if training is not None:
            info["training_version"] = training
        return info

    def models(self) -> list[dict[str, Any]]:
        found = {name: self._name_info(name) for name in self._store.names()}
        for name, problem in self._store.unusable().items():
            found[name] = {"name": name, "status": "broken", "error": problem}
        for name, info in self._trainer.training().items():
            found.setdefault(name, info)  # a first version in training
        return [found[name] for name in sorted(found)]

    def model(self, name: str) -> dict[str, Any]:
        unusable = self._store.unusable().get(name)
        if unusable is not None:
            return {"name": name, "status": "broken", "error": unusable}
        if not self._store.exists(name):
            training = self._trainer.training()
            if name in training:
                return training[name]
            raise ModelNotFound(name)
        info = self._name_info(name)
        if "current_version" in info:  # its pointers could be read
            info["versions"] = [self._version_info(name, v) for v in self._store.versions(name)]
        return info

    def version(self, name: str, version: int) -> dict[str, Any]:
        if not self._store.exists(name):
            raise ModelNotFound(name)
        self._versions.require(name, version)
        return self._version_info(name, version)

    def versions(self, name: str) -> dict[str, Any]:
        if not self._store.exists(name):
            raise ModelNotFound(name)
        described = self._versions.describe(name)
        versions = [self._version_info(name, v) for v in self._store.versions(name)]
        return {**described, "versions": versions}

    def untrusted(self) -> list[dict[str, Any]]:
        """Every version whose files are not the server's (blocking: may hash new files)."""
        return [
            info
            for name in self._store.names()
            for info in (self._store.describe(name, v) for v in self._store.versions(name))
            if info.get("status") == "untrusted"
        ]

    # -- capacity, as the scrape-time gauges of server.metrics read it -------------------------
    def training_slots(self) -> int:
        return self._trainer.slot_count

    def training_slots_busy(self) -> int:
        return self._trainer.busy

    def models_loaded(self) -> int:
        return len(self._registry.loaded())

    def models_loaded_max(self) -> int:
        return self._registry.max_models

    def untrusted_versions(self) -> int:
        """A stat per file once the verdicts are known (server.store: metadata and file
        tags are checked again only when a file changes); /metrics renders at most a few
        times a second (server.metrics)."""
        return len(self.untrusted())

    def status(self) -> dict[str, Any]:
        running = self._trainer.running()
        slots = self._trainer.slot_count
        loaded = self._registry.loaded()
        current = {name for name, version in loaded if self._is_current(name, version)}
        return {
            "training": {
                **self._trainer.backend.describe(),
                "cores": slots + 1,
                "slots": slots,
                "active": self._trainer.busy,
                "models": sorted(job.name for job in running),
                "jobs": [
                    {"id": job.id, "name": job.name, "progress": job.progress()} for job in running
                ],
            },
            "inference": {
                "max_models": self._registry.max_models,
                "loaded": sorted(current),
                "loaded_versions": [{"name": name, "version": v} for name, v in loaded],
            },
        }

    def _is_current(self, name: str, version: int) -> bool:
        pointers = self._versions.cached(name)
        return pointers is not None and pointers.current == version
