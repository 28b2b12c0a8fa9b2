"""One error body for every failure: RFC 9457 problem details (``application/problem+json``).

parkflow's errors are mapped here, at the API's edge, as the command line maps them to exit
codes: bad input 400 (or 422 when the request does not validate), unknown or not yours 404,
a store or database down 503, anything else 500 without its internals.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from parkflow.errors import ConfigError, InputError, StoreError, StoreUnavailable

log = logging.getLogger("parkflow.api")

PROBLEM = "application/problem+json"
_TITLES = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    422: "Request does not validate",
    500: "Internal error",
    503: "Unavailable",
}


class Problem(BaseModel):
    """RFC 9457 problem details."""

    type: str = Field(default="about:blank", examples=["about:blank"])
    title: str = Field(examples=["Not found"])
    status: int = Field(examples=[404])
    detail: str | None = Field(default=None, examples=["no meter songlam/det-phuoc/det-water"])
    instance: str | None = Field(default=None, examples=["/v1/meters/songlam/det-phuoc/x"])
    errors: list[dict[str, Any]] | None = Field(
        default=None, description="what did not validate (422 only)"
    )


class ApiProblem(Exception):
    """Raised by routes for a status with a detail; rendered as a problem."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        self.status = status
        self.detail = detail
        self.headers = headers
        super().__init__(detail)


def not_found(what: str) -> ApiProblem:
    """The answer for what does not exist and for what is not the caller's alike, so a
    tenant cannot learn which of another tenant's ids exist."""
    return ApiProblem(404, f"no {what}")


def problem(
    request: Request,
    status: int,
    detail: str | None,
    headers: Mapping[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body = Problem(
        title=_TITLES.get(status, "Error"),
        status=status,
        detail=detail,
        instance=request.url.path,
        errors=errors,
    )
    return JSONResponse(
        body.model_dump(exclude_none=True), status_code=status, headers=headers, media_type=PROBLEM
    )


# The responses every route may give, for the OpenAPI document.
RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Problem, "content": {PROBLEM: {}}, "description": _TITLES[code]}
    for code in (400, 401, 403, 404, 422, 503)
}


def install(app: FastAPI) -> None:
    async def api_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiProblem)
        return problem(request, exc.status, exc.detail, exc.headers)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        return problem(request, exc.status_code, str(exc.detail), exc.headers)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")), "type": e.get("type")}
            for e in exc.errors()
        ]
        return problem(request, 422, "the request does not validate", errors=errors)

    async def parkflow_error(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, InputError):
            return problem(request, 400, str(exc))
        if isinstance(exc, StoreUnavailable):
            log.warning("store unavailable: %s", exc)
            return problem(request, 503, "a store or database is unavailable; try again later")
        log.error("request failed: %s", exc)
        return problem(request, 500, "the request failed")

    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s", request.url.path, exc_info=exc)
        return problem(request, 500, "the request failed")

    app.add_exception_handler(ApiProblem, api_problem)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    for kind in (InputError, StoreError, ConfigError):
        app.add_exception_handler(kind, parkflow_error)
    app.add_exception_handler(Exception, unexpected)
