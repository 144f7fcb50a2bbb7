"""Request bodies in, numpy out: JSON (`X`, `records`, `y`) or a CSV / Parquet file. This
package owns the parsing and its 422s, the matching of named columns to a model's, and how
large a table may be (413).

Each `read_*` picks the parser from the content type. A big JSON body is parsed in a worker
thread, with the cyclic garbage collector paused, so the event loop keeps answering.
"""

from __future__ import annotations

import asyncio
import gc
import threading
from collections.abc import Callable
from functools import partial
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel

from server.ingest import multipart
from server.ingest.features import Features
from server.ingest.inputs import (
    ConfigT,
    EvaluateInput,
    ExplainInput,
    FitInput,
    PredictInput,
    RowsInput,
)
from server.ingest.json_body import evaluate_input, fit_input, rows_input
from server.ingest.limits import TableLimits
from server.ingest.matrix import as_matrix
from server.schemas import ExplainConfig, FitConfig, PredictConfig

__all__ = [
    "EvaluateInput",
    "ExplainInput",
    "Features",
    "FitInput",
    "PredictInput",
    "TableLimits",
    "as_matrix",
    "gc_paused",
    "read_evaluate",
    "read_explain",
    "read_fit",
    "read_predict",
]

# Bodies up to this size are parsed on the event loop (about a millisecond); larger ones in
# a thread.
INLINE_PARSE_BYTES = 256 * 1024
Parsed = TypeVar("Parsed")


async def read_fit(
    request: Request, limits: TableLimits, config_type: type[BaseModel] = FitConfig
) -> FitInput:
    """A table with its labels (/fit; /automl with its own config)."""
    if multipart.is_multipart(request):
        return await multipart.read_fit(request, config_type, limits)
    return await _parse_json(request, partial(fit_input, config_type=config_type, limits=limits))


async def read_predict(request: Request, limits: TableLimits) -> PredictInput:
    return await read_rows(request, limits, PredictConfig)


async def read_explain(request: Request, limits: TableLimits) -> ExplainInput:
    return await read_rows(request, limits, ExplainConfig)


async def read_rows(
    request: Request, limits: TableLimits, config_type: type[ConfigT]
) -> RowsInput[ConfigT]:
    if multipart.is_multipart(request):
        return await multipart.read_rows(request, limits, config_type)
    return await _parse_json(request, partial(rows_input, config_type=config_type, limits=limits))


async def read_evaluate(request: Request, limits: TableLimits) -> EvaluateInput:
    if multipart.is_multipart(request):
        return await multipart.read_evaluate(request, limits)
    return await _parse_json(request, partial(evaluate_input, limits=limits))


class _GcPause:
    """No cyclic garbage collection while a body is parsed: the collector would run again
    and again over the 100,000 fresh lists of a big matrix (more than doubling its parse: see
    docs/performance-history.md, Figures behind the code), and none of them can be garbage. The
    pause is process-wide, so it is counted: parses in parallel threads resume collection
    only when the last one ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0
        self._was_enabled = True

    def __enter__(self) -> None:
        with self._lock:
            if self._running == 0:
                self._was_enabled = gc.isenabled()
                gc.disable()
            self._running += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._running -= 1
            if self._running == 0 and self._was_enabled:
                gc.enable()


gc_paused = _GcPause()


async def _parse_json(request: Request, build: Callable[[bytes], Parsed]) -> Parsed:
    body = await request.body()
    if len(body) <= INLINE_PARSE_BYTES:
        return build(body)
    return await asyncio.to_thread(_without_gc, build, body)


def _without_gc(build: Callable[[bytes], Parsed], body: bytes) -> Parsed:
    with gc_paused:
        return build(body)
