"""What a log line concerns: the request, the task and the user, wherever they are known.

A process sets one `Tags` for the work at hand (the API for each request, the worker's pool
child for each run) in a context variable; whatever is logged meanwhile carries them
(core.log_format). The object is shared, not copied: a dependency that learns the user, or a
route that learns the task, fills it in for every later line of the request, the access line
included, even from a copied context (a thread, a stream's task).
"""

import re
from contextvars import ContextVar, Token
from dataclasses import dataclass

# A request id or a task id that may go into a log line and a header as it is: bounded,
# and no character that could break a line, a JSON string or a field (no spaces, quotes,
# backslashes or control characters).
_SANE = re.compile(r"[A-Za-z0-9._:+/=-]{1,128}")


@dataclass(slots=True)
class Tags:
    """The request, task and user of the work at hand (None: not known)."""

    request_id: str | None = None
    task_id: str | None = None
    user: str | None = None


# The tags of the work at hand; set with `begin` (or, on a hot path, `.set` and `.reset`).
CURRENT: ContextVar[Tags | None] = ContextVar("taskline_log_tags", default=None)
_current = CURRENT


def sane(text: str | None) -> str | None:
    """The text if it is fit for a log line and a header as it is, else None."""
    return text if text is not None and _SANE.fullmatch(text) else None


def current() -> Tags | None:
    return _current.get()


def begin(tags: Tags) -> Token[Tags | None]:
    """Tag what this context logs from now on; `end` with the token returned."""
    return _current.set(tags)


def end(token: Token[Tags | None]) -> None:
    _current.reset(token)


def tag_user(name: str) -> None:
    """The work at hand is done for this user (a configured name: always sane)."""
    tags = _current.get()
    if tags is not None:
        tags.user = name


def tag_task(task_id: str) -> None:
    """The work at hand concerns this task (an id from a path is kept only if sane)."""
    tags = _current.get()
    if tags is not None and (checked := sane(task_id)):
        tags.task_id = checked
