"""What an answer must look like before the CLI reads it.

The CLI may be pointed at something that is not a good Taskline (a proxy's HTML page, another
service, a broken server): whatever it answers ends the command as a CliError (exit 3) saying
what was wrong, never as a traceback from a key lookup deep in a view.
"""

import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

from taskline.cli.exits import CliError, ExitCode

NULL = type(None)


@dataclass(frozen=True, slots=True)
class Obj:
    """A JSON object: keys it must have, keys it may have (a missing one is fine), each with
    its own shape; other keys are ignored. `nullable`: null is accepted in its place."""

    required: Mapping[str, "Shape"] = field(default_factory=dict)
    optional: Mapping[str, "Shape"] = field(default_factory=dict)
    nullable: bool = False


@dataclass(frozen=True, slots=True)
class ListOf:
    """A JSON array whose every item has the shape `item`."""

    item: "Shape"


class Number:
    """A finite JSON number (not a boolean): one the views can format with `:.1f`."""


class Text:
    """A JSON string."""


Shape = Obj | ListOf | tuple[Any, ...] | type
"""A tuple is any one of its shapes; `object` is any JSON value; NULL is null."""

NAMES = {Number: "a number", Text: "a string", NULL: "null", object: "any value"}


def problem(value: Any, shape: Shape, where: str = "") -> str | None:
    """Why `value` does not have `shape` (where in it: `items[0].id`, and what was expected),
    or None."""
    name = where or "the answer"
    if isinstance(shape, tuple):
        if any(problem(value, each) is None for each in shape):
            return None
        return f"{name} is not {expected(shape)}"
    if isinstance(shape, Obj):
        if value is None and shape.nullable:
            return None
        if not isinstance(value, dict):
            return f"{name} is not an object"
        for key in shape.required:
            if key not in value:
                return f"{name} has no {key!r}"
        for key, inner in (*shape.required.items(), *shape.optional.items()):
            inside = f"{where}.{key}" if where else key
            if key in value and (why := problem(value[key], inner, inside)):
                return why
        return None
    if isinstance(shape, ListOf):
        if not isinstance(value, list):
            return f"{name} is not an array"
        for index, item in enumerate(value):
            if why := problem(item, shape.item, f"{where}[{index}]"):
                return why
        return None
    checks: dict[object, Callable[[], bool]] = {
        Number: lambda: finite(value),
        Text: lambda: isinstance(value, str),
        NULL: lambda: value is None,
        object: lambda: True,
    }
    ok = checks[shape]()
    return None if ok else f"{name} is not {expected(shape)}"


def expected(shape: Shape) -> str:
    """A shape in words, for a message."""
    if isinstance(shape, Obj):
        return "an object"
    if isinstance(shape, ListOf):
        return "an array"
    if isinstance(shape, tuple):
        return " or ".join(expected(each) for each in shape)
    return NAMES[shape]


def finite(value: Any) -> bool:
    """A number that formats: no boolean, no NaN or infinity, no int too big for a float."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def unexpected(response: httpx.Response, why: str) -> CliError:
    """The one error of an answer that is not the API's: exit 3, saying what came."""
    request = response.request
    return CliError(
        f"unexpected answer from the server to {request.method} {request.url.path} "
        f"(HTTP {response.status_code}): {why}",
        ExitCode.HTTP,
        status=response.status_code,
    )


def decoded(response: httpx.Response, shape: Shape) -> Any:
    """The answer's JSON body, once it is known to have `shape`."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # not JSON, not text, or nested beyond reason
        kind = response.headers.get("content-type") or "no content type"
        raise unexpected(response, f"not JSON ({kind})") from None
    if why := problem(body, shape):
        raise unexpected(response, why)
    return body


def event_data(text: str, shape: Shape, kind: str, path: str) -> Any:
    """An event's data decoded, once it is known to have `shape`."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        raise stream_error(path, f"the {kind!r} event's data is not JSON") from None
    if why := problem(data, shape):
        raise stream_error(path, f"in a {kind!r} event, {why.replace('the answer', 'the data')}")
    return data


def stream_error(path: str, why: str) -> CliError:
    """An event stream that is not the API's: exit 3, the command ends."""
    return CliError(f"unexpected event stream from the server at {path}: {why}", ExitCode.HTTP)


TIME = (Text, NULL)
PROGRESS = Obj(optional={"percent": Number}, nullable=True)
ERROR = Obj(nullable=True)  # its type and message are shown as they are
TASK_FIELDS: dict[str, Shape] = {
    "id": Text,
    "state": Text,
    "name": Text,
    "owner": Text,
    "line": (Text, NULL),
    "priority": (Number, NULL),
    "params": object,
    "queued_at": TIME,
    "not_before": TIME,
    "started_at": TIME,
    "finished_at": TIME,
    "queue_position": (Number, NULL),
    "progress": PROGRESS,
    "error": ERROR,
    "attempts": (Number, NULL),
    "worker": (Text, NULL),
    "retry_of": (Text, NULL),
    "retried_by": (Text, NULL),
    "clone_of": (Text, NULL),
}
TASK = Obj({"id": Text, "state": Text}, TASK_FIELDS)
"""A task (`TaskOut`), as far as the views read it."""
RESULT = Obj({"id": Text, "state": Text})
PAGE = Obj({"items": ListOf(TASK)}, {"next_cursor": (Text, NULL)})
TOKEN = Obj({"access_token": Text}, {"expires_in": (Number, NULL)})
BULK = Obj(
    {"results": ListOf(Obj({"id": Text, "outcome": Text}, {"retry_id": (Text, NULL)}))},
    {"next_cursor": (Text, NULL)},
)
"""A bulk action's report (POST /tasks/bulk/...): one result per task."""
TASK_TYPES = ListOf(Obj({"name": Text, "params_schema": object}, {"description": (Text, NULL)}))

USAGE = Obj(optional={"percent": Number, "used": Number, "total": Number})
CPU = Obj(optional={"total": Number, "per_core": ListOf(Number)})
MEMORY = Obj(optional={"virtual": USAGE, "swap": USAGE})
PARTITIONS = ListOf(
    Obj(
        optional={
            "mountpoint": Text,
            "device": Text,
            "percent": Number,
            "used": Number,
            "total": Number,
        }
    )
)

WORKERS = Obj(
    {
        "workers": ListOf(
            Obj(
                {"node": Text},
                {
                    "active": object,
                    "line": Text,
                    "queue": Text,
                    "host": Text,
                    "pid": Number,
                    "task_id": (Text, NULL),
                    "last_heartbeat": TIME,
                    "cpu_percent": Number,
                    "memory": USAGE,
                    "disk": USAGE,
                },
            )
        )
    },
    {"active": (Text, NULL), "expiry_seconds": Number},
)
"""GET /workers, as far as `taskline workers` reads it."""

ETA = Obj({"id": Text, "state": Text}, {"expected_start": TIME, "expected_end": TIME})
"""GET /tasks/{id}/eta: when a task should start and end."""
QUEUE = Obj(
    {"depth": Number, "running": ListOf(TASK), "next": ListOf(TASK)},
    {
        "line": Text,
        "queue": Text,
        "scheduled": Number,
        "consumers": (Number, NULL),
        "expected": ListOf(ETA),
    },
)
"""GET /queue (one line), as far as `taskline queue` reads it."""
LINES = Obj({"lines": ListOf(QUEUE)})
"""GET /lines: every line."""

HISTORY = ListOf(Obj({"at": Text}))
CHANGE = Obj(optional=TASK_FIELDS)
"""An event of one task's stream: the fields of the task that changed."""
LINE_EVENTS: dict[str, Shape] = {
    "snapshot": Obj(
        optional={
            "running": ListOf(Obj({"id": Text}, TASK_FIELDS)),
            "postponed": ListOf(object),
            "depth": Number,
        }
    ),
    "line": Obj(optional={"depth": Number, "line": Text}),
    "task": Obj({"id": Text}, {**TASK_FIELDS, "kind": Text, "at": TIME}),
}
"""The events of `GET /events` that `watch` reads (others it passes on as they are)."""
