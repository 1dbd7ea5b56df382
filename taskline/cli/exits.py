"""Exit codes, so that scripts can tell a failed task from a refused request."""

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """What `taskline` exits with (listed in `taskline --help` and the README)."""

    OK = 0
    INTERRUPTED = 1  # Ctrl-C (except in `watch`, where it is the way to stop)
    USAGE = 2  # bad command, option or param syntax: nothing was sent
    HTTP = 3  # the API answered 4xx/5xx, could not be reached, or answered nonsense
    FAILURE = 4  # the task ended in FAILURE
    CANCELLED = 5  # the task ended CANCELLED
    UNFINISHED = 6  # `result` of a task that has not ended yet
    REFUSED = 7  # a bulk cancel, retry or delete refused some of its tasks


def for_state(state: str) -> ExitCode:
    """The exit code of a command that reports a task in `state` as its outcome."""
    match state:
        case "SUCCESS":
            return ExitCode.OK
        case "FAILURE":
            return ExitCode.FAILURE
        case "CANCELLED":
            return ExitCode.CANCELLED
        case _:
            return ExitCode.UNFINISHED


class CliError(Exception):
    """An outcome that ends the command: shown on stderr (as JSON too with --json)."""

    def __init__(
        self, message: str, code: ExitCode, detail: Any = None, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.detail = detail
        self.status = status

    def as_json(self) -> dict[str, Any]:
        """The error for machines: message, exit code, HTTP status and the API's detail."""
        return {
            "error": self.message,
            "exit_code": int(self.code),
            "status": self.status,
            "detail": self.detail,
        }


EXIT_CODES_HELP = "\n".join(
    f"{int(code)}  {text}"
    for code, text in (
        (ExitCode.OK, "success (the task, if waited for, ended in SUCCESS)"),
        (ExitCode.INTERRUPTED, "interrupted (Ctrl-C); `watch` exits 0 instead"),
        (ExitCode.USAGE, "usage error: bad command, option or param syntax (nothing sent)"),
        (
            ExitCode.HTTP,
            "the API refused the request (4xx/5xx, its detail on stderr), could not be reached, "
            "or answered with something that is not the API's",
        ),
        (ExitCode.FAILURE, "the task ended in FAILURE"),
        (ExitCode.CANCELLED, "the task ended CANCELLED"),
        (ExitCode.UNFINISHED, "`result`: the task has not ended yet"),
        (ExitCode.REFUSED, "a bulk cancel, retry or delete: some tasks were refused"),
    )
)
