"""How an exception becomes an answer: `{"detail": ...}` with the right status, always JSON.

Routes never build error responses: they raise a `ServiceError` (server.errors), and the
handlers here answer. FastAPI's own errors are reshaped to the contract on the way out.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from server.errors import ServiceError, disk_error

MAX_REPORTED_ERRORS = 10
# Errors whose message names the value refused, when it is short: a choice among values.
NAMED_VALUE_ERRORS = frozenset({"literal_error", "enum"})
MAX_NAMED_VALUE_CHARS = 64


def answer(error: ServiceError | RequestValidationError) -> JSONResponse:
    """The answer to an error a request raised: the handlers' and the hot path's."""
    if isinstance(error, ServiceError):
        return JSONResponse(
            status_code=error.status_code, content={"detail": error.detail}, headers=error.headers
        )
    return JSONResponse(status_code=422, content={"detail": validation_detail(error)})


async def _answer_service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return answer(error)


async def _answer_validation_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    return answer(error)


def _message(item: dict[str, Any]) -> str:
    """pydantic's message, naming the value refused when it is a short scalar (a choice
    among allowed values: `Input should be 'roc_auc' or 'log_loss', got 'auc'`)."""
    value = item.get("input")
    if item["type"] in NAMED_VALUE_ERRORS and isinstance(value, str | int | float):
        shown = repr(value)
        if len(shown) <= MAX_NAMED_VALUE_CHARS:
            return f"{item['msg']}, got {shown}"
    return str(item["msg"])


def validation_detail(error: RequestValidationError) -> list[dict[str, Any]]:
    """FastAPI's list form, without echoing the input: it may hold NaN (not JSON, so the
    default handler would fail with a 500) or a whole matrix of features."""
    # A whole column of wrong values would make one entry per value: keep the first few.
    errors = error.errors()
    detail: list[dict[str, Any]] = [
        {"type": item["type"], "loc": list(item["loc"]), "msg": _message(item)}
        for item in errors[:MAX_REPORTED_ERRORS]
    ]
    if len(errors) > MAX_REPORTED_ERRORS:
        detail.append(
            {
                "type": "too_many_errors",
                "loc": ["body"],
                "msg": f"{len(errors) - MAX_REPORTED_ERRORS} more errors not shown",
            }
        )
    return detail


async def _answer_http_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, StarletteHTTPException)
    if error.status_code == 400:
        # Our routes raise no 400: FastAPI does, when the body can't be decoded at all
        # (not UTF-8, nested too deep for the JSON parser). For the contract that is bad input.
        return JSONResponse(
            status_code=422, content={"detail": "the request body is not valid JSON"}
        )
    return JSONResponse(
        status_code=error.status_code, content={"detail": error.detail}, headers=error.headers
    )


async def _answer_os_error(request: Request, error: Exception) -> JSONResponse:
    """A file operation a route could not make (a full disk, most often): JSON that says
    so, never a plain-text 500. What changes state writes before it changes anything."""
    assert isinstance(error, OSError)
    return answer(disk_error(error, f"{request.method} {request.url.path}"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _answer_service_error)
    app.add_exception_handler(OSError, _answer_os_error)
    app.add_exception_handler(RequestValidationError, _answer_validation_error)
    app.add_exception_handler(StarletteHTTPException, _answer_http_error)
