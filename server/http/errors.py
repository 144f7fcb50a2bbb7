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

from server.errors import ServiceError

MAX_REPORTED_ERRORS = 10


async def _answer_service_error(request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ServiceError)
    return JSONResponse(
        status_code=error.status_code, content={"detail": error.detail}, headers=error.headers
    )


async def _answer_validation_error(request: Request, error: Exception) -> JSONResponse:
    # FastAPI's list form, without echoing the input: it may hold NaN (not JSON, so the
    # default handler would fail with a 500) or a whole matrix of features.
    assert isinstance(error, RequestValidationError)
    # A whole column of wrong values would make one entry per value: keep the first few.
    errors = error.errors()
    detail: list[dict[str, Any]] = [
        {"type": item["type"], "loc": list(item["loc"]), "msg": item["msg"]}
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
    return JSONResponse(status_code=422, content={"detail": detail})


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


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ServiceError, _answer_service_error)
    app.add_exception_handler(RequestValidationError, _answer_validation_error)
    app.add_exception_handler(StarletteHTTPException, _answer_http_error)
