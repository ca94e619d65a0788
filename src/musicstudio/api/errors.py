"""Every error leaves as the reference's envelope, carrying the request id as ``trace_id``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match

from musicstudio.api.request_id import request_id_of
from musicstudio.clock import isoformat_z, utcnow
from musicstudio.db.database import DatabaseUnavailable
from musicstudio.errors import AppError, ServiceUnavailable
from musicstudio.storage.base import StorageError

log = logging.getLogger("musicstudio.api")

_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")
_HTTP_CODES = {
    404: ("RESOURCE_NOT_FOUND", "not_found"),
    405: ("METHOD_NOT_ALLOWED", "invalid_request"),
    413: ("PAYLOAD_TOO_LARGE", "invalid_request"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "invalid_request"),
}


def error_response(
    request: Request,
    *,
    status: int,
    code: str,
    type_: str,
    message: str,
    system_message: str | None = None,
    details: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    request_id = request_id_of(request.scope)
    body = {
        "success": False,
        "error": {
            "code": code,
            "message": message,
            "system_message": system_message or message,
            "type": type_,
            "status": status,
            "details": details or {},
            "trace_id": request_id,
            "timestamp": isoformat_z(utcnow()),
        },
    }
    all_headers = {"x-request-id": request_id, **(headers or {})}
    return Response(
        orjson.dumps(body), status_code=status, media_type="application/json", headers=all_headers
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    return ".".join(parts) or "body"


async def _on_app_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AppError)
    return error_response(
        request,
        status=exc.status,
        code=exc.code,
        type_=exc.type,
        message=exc.message,
        system_message=exc.system_message,
        details=exc.details,
        headers=exc.headers,
    )


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"field": _field_name(tuple(err.get("loc", ()))), "message": str(err.get("msg", "invalid"))}
        for err in exc.errors()
    ]
    summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
    return error_response(
        request,
        status=422,
        code="VALIDATION_ERROR",
        type_="validation_error",
        message=f"The request is not valid: {summary}",
        details={"errors": errors},
    )


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400:
        # FastAPI's only 400 here: a JSON body it could not decode (not UTF-8, or nested past
        # the parser's depth). Malformed JSON is already a 422, so this is one too.
        return _invalid_body(request)
    code, type_ = _HTTP_CODES.get(exc.status_code, ("HTTP_ERROR", "invalid_request"))
    message = "Not found." if exc.status_code == 404 else str(exc.detail)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return error_response(
        request, status=exc.status_code, code=code, type_=type_, message=message, headers=headers
    )


def _allowed_methods(request: Request) -> str:
    """Every method the path has. Starlette's 405 names those of the first route matching the
    path only, but one path here can be served by several (``GET`` and ``POST`` of
    ``…/generations``), so each method is tried against the whole router."""
    routes = request.app.router.routes
    return ", ".join(
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    )


def _invalid_body(request: Request) -> Response:
    message = "the body is not valid JSON (it must be UTF-8 text)"
    return error_response(
        request,
        status=422,
        code="VALIDATION_ERROR",
        type_="validation_error",
        message=f"The request is not valid: body: {message}",
        details={"errors": [{"field": "body", "message": message}]},
    )


async def _on_database_error(request: Request, exc: Exception) -> Response:
    log.warning("database unavailable: %s", type(exc).__name__, exc_info=exc)
    unavailable = ServiceUnavailable(
        "The service is temporarily unavailable. Please retry shortly.",
        headers={"Retry-After": "1"},
    )
    return await _on_app_error(request, unavailable)


async def _on_storage_error(request: Request, exc: Exception) -> Response:
    log.warning("storage unavailable: %s", exc, exc_info=exc)  # the reason stays in the log
    unavailable = ServiceUnavailable(
        "The audio storage is temporarily unavailable. Please retry shortly.",
        headers={"Retry-After": "1"},
    )
    return await _on_app_error(request, unavailable)


async def _on_unexpected(request: Request, exc: Exception) -> Response:
    log.error("unhandled error (request %s)", request_id_of(request.scope), exc_info=exc)
    return error_response(
        request,
        status=500,
        code="INTERNAL_ERROR",
        type_="server_error",
        message="Something went wrong on our side. Please retry; quote the trace_id if it lasts.",
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(AppError, _on_app_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    # Connection-level failures only; an IntegrityError is a bug, not an outage.
    app.add_exception_handler(OperationalError, _on_database_error)
    app.add_exception_handler(InterfaceError, _on_database_error)
    app.add_exception_handler(DatabaseUnavailable, _on_database_error)
    app.add_exception_handler(StorageError, _on_storage_error)
    app.add_exception_handler(Exception, _on_unexpected)
