"""One rule for what a categorical cell's level is, in every format.

A level is text as written, trimmed of surrounding spaces (ASCII whitespace); a blank cell
is missing. A number in a categorical column is the level of its whole value written as an
integer (`415`, `415.0` and `"415"` are one level), and so is text that reads as a decimal
number (`"415.0"`, `"4.15e2"`); a number with a fraction is refused: a level is a name, not
a quantity. Text of digits only is kept as written: `"02139"` keeps its zero, and is another
level than the number 2139. Booleans are the numbers 0 and 1.
"""

from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from server.errors import InvalidInput

# What trimming takes off either end of a level: ASCII whitespace, the same in Python and in
# pyarrow (their ideas of Unicode whitespace differ at the edges).
SPACES = " \t\n\r\f\v"
# Text that reads as a decimal number: a point or an exponent (digits alone stay text).
DECIMAL = r"^[-+]?(\d+\.\d*|\.\d+|\d+(\.\d*)?[eE][-+]?\d+|\.\d+[eE][-+]?\d+)$"
_DECIMAL = re.compile(DECIMAL)


def fraction_refused(column: str, value: Any) -> InvalidInput:
    return InvalidInput(
        f"column {column!r} is categorical, and {value!r} is a number with a fraction: a "
        "level is a name (a code, an id), not a quantity. Send whole numbers or text, or "
        "leave the column out of categorical_features"
    )


def not_a_feature(column: str, kind: pa.DataType) -> InvalidInput:
    """A file's column of a type no model learns from (a date, a list, bytes)."""
    found = (
        "bytes that are not UTF-8 text (save a CSV as UTF-8)"
        if (pa.types.is_binary(kind) or pa.types.is_large_binary(kind))
        else f"{kind} values"
    )
    return InvalidInput(
        f"column {column!r} holds {found}, which can't be a feature: a feature is numbers or "
        f'text. Leave it out ("ignore_columns": [{column!r}]), or send it as numbers or text'
    )


def is_number_type(kind: pa.DataType) -> bool:
    return bool(
        pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)
        or pa.types.is_boolean(kind) or pa.types.is_null(kind)
    )  # fmt: skip


def level_of(value: Any, column: str) -> str | None:
    """The level of one JSON value (None: missing)."""
    kind = type(value)
    if kind is str:
        text = value.strip(SPACES)
        if _DECIMAL.match(text):
            return whole_number(float(text), column)
        return text or None
    if value is None:
        return None
    if kind is bool:
        return "1" if value else "0"
    if kind is int:
        return str(value)
    if kind is float:
        return None if math.isnan(value) else whole_number(value, column)
    raise InvalidInput(f"column {column!r} holds {kind.__name__} values, not text or numbers")


def whole_number(value: float, column: str) -> str:
    if not math.isfinite(value):
        raise infinite_refused(column)
    if not value.is_integer():
        raise fraction_refused(column, value)
    return str(int(value))


def infinite_refused(column: str) -> InvalidInput:
    return InvalidInput(
        f"column {column!r} is categorical, and holds a number beyond the range of a double "
        "(infinity, or one such as 1e400): a level is a name or a whole number"
    )


def levels_of_numbers(values: np.ndarray, column: str) -> list[str | None]:
    """The levels of a float64 column (NaN: missing)."""
    present = ~np.isnan(values)
    if np.isinf(values[present]).any():
        raise infinite_refused(column)
    whole = np.floor(values[present]) == values[present]
    if not whole.all():
        raise fraction_refused(column, float(values[present][~whole][0]))
    return [
        str(int(value)) if ok else None for value, ok in zip(values.tolist(), present, strict=True)
    ]


def text_array(column: pa.Array | pa.ChunkedArray, name: str) -> pa.Array:
    """A file's column as levels: a string array, trimmed, blanks as nulls."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.dictionary_decode(), kind.value_type
    if pa.types.is_null(kind):
        return pa.nulls(len(column), pa.string())
    if pa.types.is_boolean(kind):
        column, kind = pc.cast(column, pa.int8()), pa.int8()
    if pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        numbers = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
        return pa.array(levels_of_numbers(numbers, name), pa.string())
    if pa.types.is_integer(kind):
        return pc.cast(column, pa.string())
    if pa.types.is_large_string(kind):
        column = pc.cast(column, pa.string())
    elif not pa.types.is_string(kind):
        raise not_a_feature(name, kind)
    text = trimmed(column)
    decimal = pc.fill_null(pc.match_substring_regex(text, DECIMAL), False)
    if not pc.any(decimal).as_py():
        return text
    numbers = pc.cast(text.filter(decimal), pa.float64()).to_numpy(zero_copy_only=False)
    whole = pa.array(levels_of_numbers(numbers, name), pa.string())
    return pc.replace_with_mask(text, decimal, whole)


def levels_array(
    values: np.ndarray | list[Any] | pa.Array | pa.ChunkedArray, name: str
) -> pa.Array:
    """A request's column, in any of its forms (server.tables.raw), as its levels' text."""
    if isinstance(values, np.ndarray):
        return pa.array(levels_of_numbers(values, name), pa.string())
    if isinstance(values, list):
        return pa.array([level_of(value, name) for value in values], pa.string())
    return text_array(values, name)


def trimmed(column: pa.Array) -> pa.Array:
    """A string array trimmed, blanks as nulls."""
    text = pc.utf8_trim(column, characters=SPACES)
    return pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)


def is_text_type(kind: pa.DataType) -> bool:
    if pa.types.is_dictionary(kind):
        kind = kind.value_type
    return bool(pa.types.is_string(kind) or pa.types.is_large_string(kind))
