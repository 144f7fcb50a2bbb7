"""What the dashboard shows, in one JSON object: slots, jobs, models with their versions,
and traffic. Small on purpose (it goes to every open page each second): the pictures of a
version (ROC curve, confusion matrix) are fetched by the page once, from the API."""

from __future__ import annotations

from typing import Any

from server.metrics import Metrics
from server.service.catalog import Catalog
from server.service.operations import ModelService
from server.ui.traffic import TrafficWindow

FINISHED_JOBS = 20
VERSION_KEYS = (
    "version",
    "status",
    "model_type",
    "created_at",
    "runtime",
    "error",
    "n_samples",
    "n_features",
    "classes",
    "feature_names",
)


def _version(info: dict[str, Any]) -> dict[str, Any]:
    kept = {key: info.get(key) for key in VERSION_KEYS}
    validation = info.get("validation")
    kept["scores"] = validation.get("scores") if isinstance(validation, dict) else None
    kept["pictures"] = isinstance(validation, dict) and "roc_curve" in validation
    features = info.get("features") or []
    kept["categorical"] = [f["name"] for f in features if f.get("kind") == "categorical"]
    return kept


def _job(described: dict[str, Any]) -> dict[str, Any]:
    """A job as the page shows it: of the model it made, only the library's warnings (the
    rest is the version's, read once when its pictures are drawn)."""
    model = described.get("model")
    warnings = model.get("warnings") if isinstance(model, dict) else None
    return {**described, "model": {"warnings": warnings} if warnings else None}


def _model(catalog: Catalog, name: str, current: dict[str, Any]) -> dict[str, Any]:
    described: dict[str, Any] = {
        "name": name,
        "status": current.get("status"),
        "current_version": current.get("current_version"),
        "aliases": current.get("aliases", {}),
        "training_version": current.get("training_version"),
        "versions": [],
    }
    if "current_version" in current:  # its pointers could be read
        described["versions"] = [_version(v) for v in catalog.versions(name)["versions"]]
    return described


class Snapshots:
    def __init__(self, catalog: Catalog, service: ModelService, metrics: Metrics) -> None:
        self._catalog = catalog
        self._service = service
        self._metrics = metrics
        self._traffic = TrafficWindow()

    def build(self) -> dict[str, Any]:
        self._traffic.add(self._metrics.traffic())
        jobs = [_job(job.describe()) for job in self._service.jobs()]  # newest first
        running = [job for job in jobs if job["state"] == "running"]
        finished = [job for job in jobs if job["state"] != "running"][:FINISHED_JOBS]
        status = self._catalog.status()
        return {
            "training": status["training"],
            "inference": status["inference"],
            "jobs": running + finished,  # running first, then the newest finished
            "models": [
                _model(self._catalog, info["name"], info) for info in self._catalog.models()
            ],
            "traffic": list(self._traffic.points),
        }
