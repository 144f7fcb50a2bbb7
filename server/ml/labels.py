"""Labels, in their one home: what a request's labels may be, their encoding as indices into
the sorted distinct classes for a fit, and as indices into a model's classes to score it."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.errors import InvalidInput

INT64 = np.iinfo(np.int64)
MAX_LABEL_CHARS = 256


def read_labels(values: Any, field: str = "y") -> list[Any]:
    """Integers (64-bit) or strings (1 to 256 characters), not mixed."""
    if not isinstance(values, list) or not values:
        raise InvalidInput(f"{field} must be a non-empty list of labels")
    kinds = set(map(type, values))
    if kinds == {int}:
        if min(values) < INT64.min or max(values) > INT64.max:
            raise InvalidInput(f"{field}: integer labels must fit in 64 bits")
        return values
    if kinds == {str}:
        lengths = set(map(len, values))
        if min(lengths) < 1 or max(lengths) > MAX_LABEL_CHARS:
            raise InvalidInput(
                f"{field}: string labels must have 1 to {MAX_LABEL_CHARS} characters"
            )
        return values
    raise InvalidInput(
        f"{field} must hold only integers or only strings, not a mix (nor floats or booleans)"
    )


def encode_for_fit(rows: int, y: list[Any]) -> tuple[np.ndarray, list[Any]]:
    """y as indices into its sorted distinct labels, and those labels (`rows`: how many
    rows they label)."""
    if rows != len(y):
        raise InvalidInput(f"X has {rows} rows but y has {len(y)} labels")
    classes, encoded = np.unique(np.asarray(y), return_inverse=True)
    if len(classes) < 2:
        raise InvalidInput(f"y needs at least two distinct classes, got {classes.tolist()}")
    return encoded.astype(np.int64), classes.tolist()


def encode_for_model(y: list[Any], classes: list[Any], model: str) -> np.ndarray:
    """Labels as indices into a model's classes; a label it does not know is InvalidInput."""
    index = {label: i for i, label in enumerate(classes)}
    try:
        return np.fromiter((index[label] for label in y), dtype=np.int64, count=len(y))
    except KeyError:
        unknown = sorted({repr(label) for label in y if label not in index})
        raise InvalidInput(
            f"y holds label(s) model '{model}' was not trained on: {', '.join(unknown[:10])}; "
            f"its classes are {classes}"
        ) from None
