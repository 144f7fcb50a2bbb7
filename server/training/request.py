"""What crosses the process boundary of a training: the request a backend runs, and the fitted
model it gives back. Plain frozen dataclasses of numpy arrays and builtins: they pickle
to a local training process and travel by value to a Dask worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.tables.columns import Columns, numeric_columns


@dataclass(frozen=True)
class Holdout:
    """Score the model on a stratified share of the rows, held out of its training."""

    fraction: float
    seed: int


@dataclass(frozen=True)
class TrainingRequest:
    name: str
    model_type: str
    hyperparameters: dict[str, Any]  # effective: validated, threads pinned
    X: np.ndarray  # float64, NaN where missing; categorical cells as codes of `columns`
    y_encoded: np.ndarray  # indices into `classes`
    classes: list[Any]  # the original labels, sorted
    feature_names: list[str] | None = None  # a file's columns
    columns: Columns | None = None  # each column's kind and levels (None: all numeric)
    holdout: Holdout | None = None
    compile: bool = True  # convert to ONNX after the fit (INFERENCE_RUNTIME=auto)
    version: int = 1  # of the name: saved as NAME/<version>.joblib
    # An AutoML candidate (server.automl): not saved but sent back, with its predict cost.
    candidate: bool = False
    early_stopping_rounds: int | None = None  # boosters, on the held-out rows
    # Rows from the capture (server.monitoring.inputs): the window, kept in the metadata.
    trained_from_capture: dict[str, Any] | None = None

    @property
    def model_columns(self) -> Columns:
        if self.columns is not None:
            return self.columns
        return numeric_columns(int(self.X.shape[1]), self.feature_names)

    def describe(self) -> dict[str, Any]:
        """What is known of the model before it is trained (the start of its metadata)."""
        described = {
            "name": self.name,
            "version": self.version,
            "model_type": self.model_type,
            "hyperparameters": self.hyperparameters,
            "n_samples": int(self.X.shape[0]),
            "n_features": int(self.X.shape[1]),
            "classes": self.classes,
            "feature_names": self.feature_names,
            "features": self.model_columns.describe(),
        }
        if self.trained_from_capture:
            described["trained_from_capture"] = self.trained_from_capture
        return described


@dataclass(frozen=True)
class FittedModel:
    bundle: dict[str, Any]  # what the store pickles: estimator, classes, type, width
    metadata: dict[str, Any]  # the /fit answer, without size_bytes


# This process's slot: where its fits report progress (set by `initialize`).
