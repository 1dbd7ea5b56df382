"""Errors the API answers with, each becoming `{"detail": ...}` and its status code.

TasklineError
├── UnauthorizedError        401  no, invalid, expired or revoked credentials
├── TaskNotFoundError        404  unknown task (or another user's)
├── ConflictError            409  wrong state for the request, or a serial range taken
├── PreconditionFailedError  412  If-Match names an older version of the task
├── PayloadTooLargeError     413  request body over the limit
├── InvalidParamsError       422  parameters the catalogue refuses (or a reused key)
├── TooManyRequestsError     429  creation rate or waiting-task cap exceeded
└── UnavailableError         503  RabbitMQ or Redis cannot be reached
    └── UnconfirmedError     503  sent, but RabbitMQ never confirmed it: the task is kept
                                  (its id in the detail) and runs once RabbitMQ has it
"""

from typing import Any

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
    return JSONResponse({"detail": exc.detail}, exc.status_code, headers=exc.headers)
