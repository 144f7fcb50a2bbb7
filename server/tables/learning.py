"""Which columns of a training table are categorical, and their levels: learned from the
training rows only (with `validation_fraction`, the held-out rows are unseen to the model
as any later request is), sorted, so that shuffled rows give the same model.

A column of text is categorical; `categorical_features` declares others (area codes, ids
written as numbers). A column that mixes numbers and words is most often a typo in a numeric
column, and is refused unless declared; so is a categorical column with more than
MAX_CATEGORIES levels, most often an identifier no model should learn from.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from server.errors import InvalidInput
from server.tables.columns import Column, Columns
from server.tables.encoding import every_refusal, levels_array
from server.tables.levels import is_text_type, trimmed
from server.tables.raw import RawColumn, RawTable, json_kinds

# A cell that reads as a number (what pyarrow would have parsed as one).
NUMBER = r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$"


def learn(
    raw: RawTable,
    names: list[str],
    named: bool,
    declared: set[int],
    training_rows: np.ndarray | None,
    max_categories: int,
) -> Columns:
    """The model's columns: kinds from the values (or the declaration), levels from the
    training rows (all rows when `training_rows` is None)."""
    learned, refused = [], []
    for index, (name, values) in enumerate(zip(names, raw.columns, strict=True)):
        try:
            if index in declared or _is_text(name, values, raw.where):
                learned.append(_categorical(name, values, training_rows, max_categories))
            else:
                learned.append(Column(name))
        except InvalidInput as error:  # every column's refusal in one answer
            refused.append(error.detail)
    if refused:
        raise every_refusal(refused)
    return Columns(tuple(learned), named=named)


def _is_text(name: str, values: RawColumn, where: Callable[[int], str] | None) -> bool:
    """Whether a column holds text; 422 for one that mixes numbers and words."""
    if isinstance(values, np.ndarray):
        return False
    if isinstance(values, list):
        has_text, has_numbers = json_kinds(values)
        if has_text and has_numbers:
            text = next(value for value in values if isinstance(value, str))
            number = next(value for value in values if isinstance(value, int | float))
            raise mixed(name, number, text)
        return has_text
    if not is_text_type(values.type):
        return False
    # A file's column of words and numbers: pyarrow reads it as text.
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    text = trimmed(pc.cast(values, pa.string()))
    numeric = pc.match_substring_regex(text, NUMBER)
    count, cells = pc.sum(numeric).as_py() or 0, len(text) - text.null_count
    if 0 < count < cells:
        number = text.filter(numeric)[0].as_py()
        first_word = pc.index(pc.fill_null(numeric, True), False).as_py()
        place = f", {where(first_word)}" if where is not None else ""
        raise mixed(name, number, text[first_word].as_py(), place)
    return True


def mixed(name: str, number: Any, text: str, place: str = "") -> InvalidInput:
    return InvalidInput(
        f"column {name!r} mixes numbers ({number!r}) and text ({text[:40]!r}{place}): most "
        "often a typo in a numeric column. Correct it, or declare the column categorical "
        f'("categorical_features": [{name!r}]) if its values are names or codes'
    )


def _categorical(
    name: str, values: RawColumn, training_rows: np.ndarray | None, max_categories: int
) -> Column:
    text = levels_array(name, values)
    if training_rows is not None:
        text = text.take(pa.array(training_rows))
    counted = pc.value_counts(text.drop_null())
    levels = counted.field("values").to_pylist()
    counts = counted.field("counts").to_pylist()
    if len(levels) > max_categories:
        raise InvalidInput(
            f"column {name!r} has {len(levels)} distinct values in the training rows, more "
            f"than MAX_CATEGORIES ({max_categories}): most often an identifier (a name, a "
            f'customer id), which no model should learn from. Leave it out ("ignore_columns": '
            f"[{name!r}]), or raise MAX_CATEGORIES"
        )
    order = sorted(range(len(levels)), key=levels.__getitem__)
    return Column(
        name,
        "categorical",
        tuple(levels[i] for i in order),
        tuple(int(counts[i]) for i in order),
    )
