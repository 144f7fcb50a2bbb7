"""One preparation for every fit, /fit's and AutoML's: the labels encoded and the held-out
share checked, a type's hyperparameters checked against the labels and the missing values,
the version a fit of the name will save, and its promotion once saved."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from server.algorithms import Algorithm, resolve
from server.algorithms.inputs import refuse_missing
from server.errors import InvalidInput, ServiceError, disk_error
from server.ingest import FitInput
from server.ml.labels import encode_for_fit
from server.ml.scoring import check_holdout, holdout
from server.service.versions import Versions
from server.store.files import ModelStore
from server.tables.columns import Columns
from server.tables.encoding import encode
from server.tables.learning import learn
from server.tables.raw import RawTable


@dataclass(frozen=True)
class LabelledTable:
    """What a fit trains on, checked: the rows (categorical cells as the codes of the
    model's levels), the labels as indices, the classes, the model's columns."""

    X: np.ndarray
    y_encoded: np.ndarray
    classes: list[Any]
    columns: Columns

    @property
    def feature_names(self) -> list[str] | None:
        return self.columns.feature_names

    @property
    def field(self) -> str:
        """What the user sent the rows as, for messages."""
        return "X" if self.feature_names is None else "the file"


def labelled(
    request: FitInput, validation_fraction: float | None, seed: int, max_categories: int
) -> LabelledTable:
    """422 for labels that don't fit the rows, too few of a class to hold some out, or
    columns the table can't give (server.tables.learning); the levels come from the rows
    the model trains on."""
    y_encoded, classes = encode_for_fit(request.raw.rows, request.y)
    training_rows = None
    if validation_fraction is not None:
        check_holdout(y_encoded, validation_fraction)
        training_rows = holdout(len(y_encoded), y_encoded, validation_fraction, seed)[0]
    config = request.config
    raw, names = _without_ignored(request, config.ignore_columns)
    declared = _declared(config.categorical_features, names, request.feature_names is not None)
    columns = learn(
        raw, names, request.feature_names is not None, declared, training_rows, max_categories
    )
    return LabelledTable(encode(columns, raw).X, y_encoded, classes, columns)


def _without_ignored(request: FitInput, ignored: list[str]) -> tuple[RawTable, list[str]]:
    names = request.feature_names or [f"x{i}" for i in range(len(request.raw.columns))]
    if not ignored:
        return request.raw, names
    if request.feature_names is None:
        raise InvalidInput(
            "ignore_columns names columns, and a JSON X has none: send records or a file, or "
            "leave the columns out of X"
        )
    unknown = sorted(set(ignored) - set(names))
    if unknown:
        raise InvalidInput(f"ignore_columns names column(s) the table does not have: {unknown}")
    kept = [i for i, name in enumerate(names) if name not in set(ignored)]
    if not kept:
        raise InvalidInput("ignore_columns leaves no feature column")
    columns = [request.raw.columns[i] for i in kept]
    return RawTable(columns, request.raw.rows), [names[i] for i in kept]


def _declared(declared: list[Any] | None, names: list[str], named: bool) -> set[int]:
    """The indices of the columns declared categorical; 422 for one the table lacks."""
    if not declared:
        return set()
    if all(isinstance(item, int) for item in declared):
        if named:
            raise InvalidInput(
                "categorical_features holds indices, but the table's columns have names: name them"
            )
        wrong = sorted(i for i in declared if i >= len(names))
        if wrong:
            raise InvalidInput(
                f"categorical_features holds index(es) {wrong}, but X has {len(names)} columns"
            )
        return set(declared)
    unknown = sorted(set(declared) - set(names))
    if unknown:
        raise InvalidInput(
            f"categorical_features names column(s) the table does not have: {unknown}; its "
            f"columns are {', '.join(map(repr, names[:50]))}"
        )
    return {names.index(name) for name in declared}


def checked_type(
    model_type: str, hyperparameters: dict[str, Any], table: LabelledTable
) -> tuple[Algorithm, dict[str, Any]]:
    """The type and its effective hyperparameters, or 422: an unknown type or parameter, one
    that names a file, one that contradicts the labels, missing values it can't take."""
    algorithm = resolve(model_type)
    effective = algorithm.effective_hyperparameters(hyperparameters)
    algorithm.check_against_labels(effective, len(table.classes))
    if not (algorithm.handles_missing or algorithm.imputes):
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
    except OSError as error:  # a full disk: the version is saved, its pointers not moved
        return {
            **metadata,
            "promoted": False,
            "promote_error": disk_error(error, "promoting").detail,
        }
    return {**metadata, "promoted": True}
