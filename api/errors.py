"""The one place where the pipeline's error tree becomes HTTP.

Every error body has the same shape: ``{"error": {"code", "message", "stage"}}``. ``code`` is the
error class's stable ``code`` (``unsupported_audio``, ``not_found``, ...).

    AudioTooLarge        413   EmptyAudio          400   other AudioError   415
    NotFound             404   Conflict            409   StorageUnavailable 503 (+ Retry-After)
    anything else in the tree, and errors nobody expected: 500 with a generic message
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from pipeline.errors import (
    AudioError,
    AudioTooLarge,
    Conflict,
    EmptyAudio,
    NotFound,
    PipelineError,
    StorageUnavailable,
)

logger = logging.getLogger(__name__)

#: most specific first
STATUS_BY_ERROR: tuple[tuple[type[PipelineError], int], ...] = (
    (AudioTooLarge, 413),
    (EmptyAudio, 400),
    (AudioError, 415),
    (NotFound, 404),
    (Conflict, 409),
    (StorageUnavailable, 503),
)
RETRY_AFTER_S = 30


def status_for(exc: PipelineError) -> int:
    """The HTTP status of a pipeline error (500 for the ones a client cannot act on)."""
    for cls, status in STATUS_BY_ERROR:
        if isinstance(exc, cls):
            return status
    return 500


def error_body(code: str, message: str, stage: str | None = None) -> dict[str, dict[str, str | None]]:
    return {"error": {"code": code, "message": message, "stage": stage}}


async def _pipeline_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PipelineError)
    status = status_for(exc)
    if status >= 500:
        logger.error("%s %s failed: %s: %s", request.method, request.url.path, type(exc).__name__, exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)} if status == 503 else None
    return JSONResponse(error_body(exc.code, str(exc), exc.stage), status_code=status, headers=headers)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body')}: {err.get('msg')}"
        for err in exc.errors()
    )
    return JSONResponse(error_body("invalid_request", problems or "invalid request"), status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    logger.exception("%s %s: unexpected error", request.method, request.url.path)
    return JSONResponse(error_body("internal_error", "internal error; see the server log"), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(PipelineError, _pipeline_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
