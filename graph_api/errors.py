"""What the API answers when something goes wrong: never a stack trace, always JSON.

An unhandled exception is a 500 with a generic body and an error ID; the traceback goes to the
server log under the same ID, so an operator can find it and a caller learns nothing about the
code. A 422 echoes what the caller sent only as far as it is safe to: a text (shortened, made
printable — a lone surrogate such as `\\ud800` cannot be encoded) or a number, never a whole
object or list, which may be nested deeper than any encoder recurses."""

from __future__ import annotations

import logging
import re
import secrets
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

log = logging.getLogger("campus_kg.api")
SURROGATE = re.compile(r"[\ud800-\udfff]")  # a Python str holds one only unpaired: JSON's "\ud800"


def printable(value: Any) -> Any:
    """`value` with every lone surrogate replaced by U+FFFD, at any depth."""
    if isinstance(value, str):
        return SURROGATE.sub("\ufffd", value)
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [printable(v) for v in value]
    return value


ECHOED_TEXT = 200  # characters of a refused text value the answer repeats


def _scalar(value: Any) -> Any:
    return value if value is None or isinstance(value, (bool, int, float)) else str(value)[:ECHOED_TEXT]


def bounded_error(error: dict) -> dict:
    """One validation error as the caller sees it: type, where, why, and the refused value when it
    is a scalar. (Pydantic's own `input` of a model-level error is the whole body.)"""
    shown = {"type": error.get("type"), "loc": [_scalar(part) for part in error.get("loc", ())],
             "msg": str(error.get("msg", ""))}
    value = error.get("input")
    if value is None or isinstance(value, (str, bool, int, float)):
        shown["input"] = _scalar(value)
    if isinstance(error.get("ctx"), dict):
        shown["ctx"] = {str(k): _scalar(v) for k, v in error["ctx"].items()}
    return printable(shown)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(status_code=422, content={"detail": [bounded_error(e) for e in exc.errors()]})

    @app.exception_handler(Exception)
    async def unhandled(request: Request, exc: Exception) -> JSONResponse:
        error_id = secrets.token_hex(6)
        log.error("unhandled error %s on %s %s", error_id, request.method, request.url.path, exc_info=exc)
        return JSONResponse(status_code=500, content={"detail": "internal server error 服务器内部错误",
                                                      "error_id": error_id})
