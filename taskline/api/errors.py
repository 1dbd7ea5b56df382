"""Errors the API answers with, each becoming `{"detail": ...}` and its status code.

TasklineError
├── UnauthorizedError        401  no, invalid, expired or revoked credentials
├── ForbiddenError           403  signed in, but not as an admin, or a viewer asking for a
│                                 change
├── TaskNotFoundError        404  unknown task (or another user's)
├── ConflictError            409  wrong state for the request, or a reserved range taken
├── PreconditionFailedError  412  If-Match names an older version of the task
├── PayloadTooLargeError     413  request body over the limit
├── InvalidParamsError       422  parameters the catalogue refuses (or a reused key)
├── TooManyRequestsError     429  creation rate or waiting-task cap exceeded, or too many
│                                 failed sign-ins (the name or address is locked out), or
│                                 too many event streams open
└── UnavailableError         503  RabbitMQ or Redis cannot be reached, or too many password
    │                             checks under way at once
    └── UnconfirmedError     503  sent, but RabbitMQ never confirmed it: the task is kept
                                  (its id in the detail) and runs once RabbitMQ has it
"""

import math
import re
from typing import Any

from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse


class TasklineError(Exception):
    """Base of every error the API reports to clients."""

    status_code = 500

    def __init__(self, detail: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.headers = headers


class UnauthorizedError(TasklineError):
    status_code = 401

    def __init__(self, detail: Any) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": "Bearer"})


class ForbiddenError(TasklineError):
    status_code = 403


class TaskNotFoundError(TasklineError):
    status_code = 404


class ConflictError(TasklineError):
    status_code = 409


class PreconditionFailedError(TasklineError):
    status_code = 412


class PayloadTooLargeError(TasklineError):
    status_code = 413


class InvalidParamsError(TasklineError):
    status_code = 422


class TooManyRequestsError(TasklineError):
    status_code = 429


class UnavailableError(TasklineError):
    status_code = 503


class LineGoneError(UnavailableError):
    """A task of a line this deployment no longer sets up (TASKLINE_LINES): that task's
    trouble, not the services', so a bulk action reports it and goes on."""


class UnconfirmedError(UnavailableError):
    """The message may be in RabbitMQ: its task stays QUEUED, republished if it was lost."""

    def __init__(self, task_id: str) -> None:
        super().__init__(
            {
                "message": "RabbitMQ did not confirm the task; it is kept and will run. Retry "
                "with the same Idempotency-Key, or read the task, to see it",
                "task_id": task_id,
            }
        )
        self.task_id = task_id


def error_response(exc: TasklineError) -> JSONResponse:
    """The answer to a TasklineError: `{"detail": ...}` with its status and headers."""
    return JSONResponse({"detail": encodable(exc.detail)}, exc.status_code, headers=exc.headers)


def validation_error_response(exc: RequestValidationError) -> JSONResponse:
    """FastAPI's 422 for a request that does not validate, whatever input it echoes.

    The errors quote the input they refuse, and a client can send input that JSON in UTF-8
    cannot carry: a lone surrogate (`"\\ud800"` is valid JSON text), bytes that are not
    UTF-8, NaN. FastAPI's own handler then fails with a 500; this one shows them replaced.
    """
    errors = jsonable_encoder(exc.errors(), custom_encoder={bytes: _text})
    return JSONResponse({"detail": encodable(errors)}, 422)


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def encodable(value: Any) -> Any:
    """A JSON value as UTF-8 JSON can carry it: lone surrogates become U+FFFD, bytes are
    decoded (invalid sequences replaced), NaN and infinities become their names."""
    if isinstance(value, str):
        return _SURROGATE.sub("\N{REPLACEMENT CHARACTER}", value)
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [encodable(v) for v in value]
    if isinstance(value, bytes):
        return _text(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")
