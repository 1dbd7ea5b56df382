"""How every process writes its log: readable text by default, one JSON object per line with
TASKLINE_LOG_FORMAT=json.

Each line has its time (ISO-8601, UTC, milliseconds), level, logger, process (its part of
Taskline and pid: `api`, `worker`, `worker/ForkPoolWorker-1`, `scheduler`, `flower`) and
message and, where known, the request id, task id and user it concerns (core.log_tags), then
an exception's traceback. Every message and traceback goes through core.logs.hide_secrets.

The API's access line (api.access) is written without a LogRecord: logging's machinery costs
more per line (10 to 20 µs) than a quarter of a status read. `AccessLines` renders it with
the same fields, in the same order, and the handler writes it with the process's other lines.
"""

import json
import logging
import sys
import time
from functools import lru_cache
from typing import Any, Literal, TextIO

from taskline.core import log_tags
from taskline.core.log_tags import Tags
from taskline.core.logs import hide_secrets

LogFormat = Literal["text", "json"]
ACCESS_LOGGER = "taskline.access"
# Loggers that bring handlers of their own (uvicorn's): their lines go to ours instead.
OWN_HANDLERS = ("uvicorn", "uvicorn.error")
# uvicorn's access log stays off (it logs while its logger has a handler, up to the root):
# the API writes its own access lines (api.access).
UVICORN_ACCESS = "uvicorn.access"
_TAGS = ("request_id", "task_id", "user")
# Fields of a line beyond the common ones, as a record's `extra` may give them.
_EXTRAS = ("method", "route", "status", "duration_ms")


@lru_cache(maxsize=4)
def _second(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))


def iso_time(created: float) -> str:
    """`2026-05-09T07:35:25.123Z` (the second's text is made once per second)."""
    seconds = int(created)
    return f"{_second(seconds)}.{int((created - seconds) * 1000):03d}Z"


def process_name(role: str, name: str) -> str:
    """The process as a line names it: its role, and a child's own name after it."""
    return role if name == "MainProcess" else f"{role}/{name}"


class LineFormatter(logging.Formatter):
    """A record as one text line (plus its traceback) or one JSON object."""

    def __init__(self, kind: LogFormat, role: str) -> None:
        super().__init__()
        self.json = kind == "json"
        self.role = role

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] = {
            "time": iso_time(record.created),
            "level": record.levelname,
            "logger": record.name,
            "process": {
                "name": process_name(self.role, record.processName or ""),
                "pid": record.process,
            },
            "message": hide_secrets(record.getMessage()),
        }
        tags = log_tags.current()
        for key in _TAGS:
            value = getattr(record, key, None) or (getattr(tags, key) if tags else None)
            if value is None and key == "task_id":
                value = _celery_task_id(record)
            if value:
                fields[key] = value
        for key in _EXTRAS:
            if hasattr(record, key):
                fields[key] = getattr(record, key)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            fields["exception"] = hide_secrets(record.exc_text)
        if record.stack_info:
            fields["stack"] = record.stack_info
        return json.dumps(fields, default=str) if self.json else _text(fields)


def _celery_task_id(record: logging.LogRecord) -> str | None:
    """The task of Celery's own task lines ("Task reverse[6f1c…] received"), which name it
    in their arguments: logged by the worker's main process, outside any run."""
    args = record.args
    if record.name.startswith("celery") and isinstance(args, dict):
        return log_tags.sane(str(args.get("id")))
    return None


def _text(fields: dict[str, Any]) -> str:
    process = fields["process"]
    line = (
        f"{fields['time']} {fields['level']:<7} {fields['logger']} "
        f"{process['name']}[{process['pid']}] {fields['message']}"
    )
    line += "".join(f" {key}={fields[key]}" for key in _TAGS if key in fields)
    if "exception" in fields:
        line += "\n" + fields["exception"]
    if "stack" in fields:
        line += "\n" + fields["stack"]
    return line


class LineHandler(logging.StreamHandler[TextIO]):
    """The process's one handler; `write` adds lines made without a record."""

    def __init__(self, stream: TextIO, kind: LogFormat, role: str) -> None:
        super().__init__(stream)
        self.kind: LogFormat = kind
        self.role = role
        self.setFormatter(LineFormatter(kind, role))

    def write(self, text: str) -> None:
        """Whole lines, each ending with a newline, written at once."""
        self.acquire()
        try:
            self.stream.write(text)
            self.stream.flush()
        finally:
            self.release()


_configured: dict[str, LineHandler] = {}


def configure(
    role: str, kind: LogFormat, level: int | str = logging.INFO, stream: TextIO | None = None
) -> LineHandler:
    """Write every logger's lines (those of uvicorn, Celery, Flower and Tornado included) to
    `stream` (stderr) in `kind`, for the process playing `role`; again replaces the previous
    handler."""
    handler = LineHandler(stream or sys.stderr, kind, role)
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, LineHandler)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    for name in OWN_HANDLERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
    logging.getLogger(UVICORN_ACCESS).handlers.clear()
    logging.getLogger(UVICORN_ACCESS).propagate = False
    logging.captureWarnings(True)
    _configured["handler"] = handler
    return handler


def configured() -> LineHandler | None:
    """The handler `configure` installed in this process, if any."""
    return _configured.get("handler")


@lru_cache(maxsize=256)
def _quoted(text: str) -> str:
    """A JSON string (methods, routes and their pairs are few: each is made once)."""
    return json.dumps(text)


class AccessLines:
    """Access lines of one process (api.access), as LineFormatter would write a record of
    ACCESS_LOGGER with `method`, `route`, `status` and `duration_ms` as its `extra`; what
    every line of the process shares is made once. Every field is sane by construction: the
    method is a token (the server refuses any other), the route a template of the app's,
    the request and task ids checked (core.log_tags.sane), the user a configured name."""

    def __init__(self, handler: LineHandler, pid: int) -> None:
        self.json = handler.kind == "json"
        process = process_name(handler.role, "MainProcess")
        if self.json:
            self._head = (
                f'", "level": "INFO", "logger": "{ACCESS_LOGGER}", '
                f'"process": {{"name": "{process}", "pid": {pid}}}, "message": '
            )
        else:
            self._head = f" INFO    {ACCESS_LOGGER} {process}[{pid}] "

    def __call__(
        self,
        created: float,
        method: str,
        route: str | None,
        status: int,
        duration_ms: float,
        tags: Tags,
    ) -> str:
        """One line, with its newline."""
        request = f"{method} {route or '-'}"
        outcome = f"{status} {duration_ms:.1f} ms"
        if not self.json:
            line = f"{iso_time(created)}{self._head}{request} {outcome}"
            if tags.request_id:
                line += f" request_id={tags.request_id}"
            if tags.task_id:
                line += f" task_id={tags.task_id}"
            if tags.user:
                line += f" user={tags.user}"
            return line + "\n"
        line = f'{{"time": "{iso_time(created)}{self._head}{_quoted(request)[:-1]} {outcome}"'
        if tags.request_id:
            line += f', "request_id": "{tags.request_id}"'
        if tags.task_id:
            line += f', "task_id": "{tags.task_id}"'
        if tags.user:
            line += f', "user": "{tags.user}"'
        route_text = _quoted(route) if route else "null"
        return (
            f'{line}, "method": {_quoted(method)}, "route": {route_text}, "status": {status}, '
            f'"duration_ms": {duration_ms:.2f}}}\n'
        )
