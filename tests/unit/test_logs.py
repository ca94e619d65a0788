"""JSON log lines carry the request id of the request being served."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from musicstudio.api.request_id import RequestIdMiddleware
from musicstudio.config import log_format
from musicstudio.logs import JsonFormatter, request_id_var


def _capture(name: str) -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger(name)
    logger.handlers[:] = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False
    return logger, stream


async def test_log_lines_inside_a_request_carry_its_id() -> None:
    logger, stream = _capture("test.logs.request")

    async def endpoint(request: Request) -> PlainTextResponse:
        logger.info("rendering %s", "something")
        return PlainTextResponse("ok")

    app = RequestIdMiddleware(Starlette(routes=[Route("/", endpoint)]))
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        given = await client.get("/", headers={"x-request-id": "abc-123"})
        fresh = await client.get("/")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["abc-123", fresh.headers["x-request-id"]]
    assert given.headers["x-request-id"] == "abc-123"
    assert lines[0]["message"] == "rendering something"
    assert lines[0]["level"] == "info" and lines[0]["logger"] == "test.logs.request"
    assert request_id_var.get() is None, "the id does not leak out of the request"


def test_lines_outside_requests_have_no_request_id_and_keep_tracebacks() -> None:
    logger, stream = _capture("test.logs.plain")
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        logger.exception("failed")
    [line] = [json.loads(x) for x in stream.getvalue().splitlines()]
    assert "request_id" not in line
    assert line["message"] == "failed" and "RuntimeError: boom" in line["exc"]
    assert line["ts"].endswith("+00:00")


def test_log_format_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MUSICSTUDIO_LOG_FORMAT", raising=False)
    assert log_format() == "text"
    monkeypatch.setenv("MUSICSTUDIO_LOG_FORMAT", "JSON")
    assert log_format() == "json"
    monkeypatch.setenv("MUSICSTUDIO_LOG_FORMAT", "xml")
    with pytest.raises(ValueError, match="LOG_FORMAT"):
        log_format()
