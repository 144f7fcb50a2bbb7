"""Predictions as CSV, for `Accept: text/csv`: a `prediction` column, and with
`probabilities` one `probability_<class>` column per class. Written by pyarrow.

A text cell that starts with `=`, `+`, `-`, `@`, a tab or a carriage return is written with
a `'` before it, as OWASP advises: a spreadsheet would otherwise run it as a formula (a label
such as `=cmd|' /C calc'!A0`). Numbers are written as they are."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from fastapi import Request
from fastapi.responses import Response

CSV = "text/csv"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def wants_csv(request: Request) -> bool:
    return CSV in request.headers.get("accept", "").lower()


def spreadsheet_safe(value: Any) -> Any:
    """A text cell that a spreadsheet would take for a formula, quoted with `'`."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def predictions_csv(answer: dict[str, Any]) -> Response:
    columns: dict[str, Any] = {"prediction": [spreadsheet_safe(v) for v in answer["predictions"]]}
    if "probabilities" in answer:
        by_class = list(zip(*answer["probabilities"], strict=True))
        for label, values in zip(answer["classes"], by_class, strict=True):
            columns[f"probability_{label}"] = list(values)  # starts with a letter
    buffer = io.BytesIO()
    pa_csv.write_csv(pa.table(columns), buffer)
    return Response(buffer.getvalue(), media_type=f"{CSV}; charset=utf-8")
