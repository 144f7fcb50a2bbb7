"""One preparation for every fit, /fit's and AutoML's: the labels encoded and the held-out
share checked, a type's hyperparameters checked against the labels and the missing values,
the version a fit of the name will save, and its promotion once saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.algorithms import Algorithm, resolve
from server.algorithms.inputs import refuse_missing
from server.errors import ServiceError
from server.ingest import FitInput
from server.ml.labels import encode_for_fit
from server.ml.scoring import check_holdout
from server.service.versions import Versions
from server.store.files import ModelStore


@dataclass(frozen=True)
class LabelledTable:
    """What a fit trains on, checked: the rows, the labels as indices, the classes."""

    X: np.ndarray
    y_encoded: np.ndarray
    classes: list[Any]
    feature_names: list[str] | None

    @property
    def field(self) -> str:
        """What the user sent the rows as, for messages."""
        return "X" if self.feature_names is None else "the file"


def labelled(request: FitInput, validation_fraction: float | None) -> LabelledTable:
    """422 for labels that don't fit the rows, or too few of a class to hold some out."""
    y_encoded, classes = encode_for_fit(request.X, request.y)
    if validation_fraction is not None:
        check_holdout(y_encoded, validation_fraction)
    return LabelledTable(request.X, y_encoded, classes, request.feature_names)


def checked_type(
    model_type: str, hyperparameters: dict[str, Any], table: LabelledTable
) -> tuple[Algorithm, dict[str, Any]]:
    """The type and its effective hyperparameters, or 422: an unknown type or parameter, one
    that names a file, one that contradicts the labels, missing values it can't take."""
    algorithm = resolve(model_type)
    effective = algorithm.effective_hyperparameters(hyperparameters)
    algorithm.check_against_labels(effective, len(table.classes))
    refuse_missing(algorithm, table.X, table.feature_names, table.field)
    return algorithm, effective


def next_version(store: ModelStore, versions: Versions, name: str, exists: bool) -> int:
    """The number the name's next version gets (never one given before)."""
    return store.next_version(name, versions.pointers(name) if exists else None)


async def promoted(
    versions: Versions, name: str, version: int, metadata: dict[str, Any]
) -> dict[str, Any]:
    """A saved version made current; if that fails, saved all the same, and the answer
    says why it was not promoted."""
    try:
        await versions.promote(name, version)
    except ServiceError as error:
        return {**metadata, "promoted": False, "promote_error": error.detail}
    return {**metadata, "promoted": True}
