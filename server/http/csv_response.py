"""Predictions as CSV, for `Accept: text/csv`: a `prediction` column, and with
`probabilities` one `probability_<class>` column per class. Written by pyarrow."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
from fastapi import Request
from fastapi.responses import Response

CSV = "text/csv"


def wants_csv(request: Request) -> bool:
    return CSV in request.headers.get("accept", "")


def predictions_csv(answer: dict[str, Any]) -> Response:
    columns: dict[str, Any] = {"prediction": answer["predictions"]}
    if "probabilities" in answer:
        by_class = list(zip(*answer["probabilities"], strict=True))
        for label, values in zip(answer["classes"], by_class, strict=True):
            columns[f"probability_{label}"] = list(values)
    buffer = io.BytesIO()
    pa_csv.write_csv(pa.table(columns), buffer)
    return Response(buffer.getvalue(), media_type=f"{CSV}; charset=utf-8")
