"""One spelling rule for keys (`config.key` on /predict, feedback by key or file, erasure),
in every format, so that a person's rows are found whatever carried their key.

A key is text as written. A number is spelled as JSON writes it, without a fraction when it
has none: `1041`, `1041.0`, the text `"1041.0"` and a Parquet double 1041.0 are one key,
`"1041"`; `10.5` stays `"10.5"`. Text of digits only is kept as written (`"02139"` keeps its
zero), as for categorical levels (server.tables.levels). Booleans are `"true"` and
`"false"`. A key column of lists, structs or bytes that are not UTF-8 is refused.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from server.errors import InvalidInput
from server.tables.levels import DECIMAL

_DECIMAL = re.compile(DECIMAL)


def number_key(value: float) -> str:
    if not math.isfinite(value):
        return repr(value)
    return str(int(value)) if value.is_integer() else repr(value)


def key_of(value: Any, column: str = "key") -> str | None:
    """The key of one JSON value or query parameter (None: missing)."""
    kind = type(value)
    if kind is str:
        return number_key(float(value)) if _DECIMAL.match(value) else value
    if value is None:
        return None
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        return None if math.isnan(value) else number_key(value)
    raise InvalidInput(
        f"the key column {column!r} holds {kind.__name__} values, not text or numbers"
    )


def keys_of_column(column: pa.Array | pa.ChunkedArray, name: str) -> list[str | None]:
    """A file's key column, spelled by the rule."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        try:
            column, kind = pc.cast(column, pa.string()), pa.string()
        except pa.ArrowInvalid:
            raise InvalidInput(
                f"the key column {name!r} holds bytes that are not UTF-8 text"
            ) from None
    if not (
        pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_integer(kind)
        or pa.types.is_floating(kind) or pa.types.is_decimal(kind) or pa.types.is_boolean(kind)
        or pa.types.is_null(kind)
    ):  # fmt: skip
        raise InvalidInput(
            f"the key column {name!r} holds {kind} values: a key is text or a number"
        )
    if pa.types.is_decimal(kind):
        column = pc.cast(column, pa.float64())
    return [key_of(value, name) for value in column.to_pylist()]
