"""A run's result: the pages it writes while it runs, and the bytes its returned value takes.

A task's params and result together may take at most TASKLINE_MAX_TASK_BYTES as stored: a
result that would pass that ends the task FAILURE instead, the result not kept (and not
retried: the run did not fail, its result is too large). A result too large for one document
is written page by page (GET /tasks/{id}/pages/{n}); each page carries the run's token, so a
stale run's pages are refused.
"""

from typing import Any

from taskline.context import Superseded
from taskline.core.records import dumps
from taskline.worker.hooks.run import Run


class ResultTooLargeError(Exception):
    """The result would take the task past the bytes one task may hold: it is not stored."""


def append_page(run: Run, items: list[Any]) -> None:
    """Add one page of a large result."""
    if not run.transitions.page(run.task_id, run.token, items):
        raise Superseded("another attempt holds this task now")


def measure(run: Run, result: Any) -> None:
    """Count the bytes the result takes as stored (run.stored); ResultTooLargeError when the
    params and the result together pass the task's limit."""
    size = len(dumps(result).encode())
    limit = run.settings.max_task_bytes
    if run.params_bytes + size > limit:
        raise ResultTooLargeError(
            f"the result takes {size} bytes as stored and the params {run.params_bytes}: "
            f"over the {limit} bytes a task may hold, so the result was not kept"
        )
    run.stored = size
