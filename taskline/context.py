"""What a running task may ask of Taskline: report progress, write pages, look for a stop.

The worker hands an implementation one `Context` per run; the implementation returns JSON.
"""

import logging
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from taskline.core.settings import Settings


class RunStopped(Exception):  # noqa: N818 (read as "raise Cancelled")
    """The run must end now; raised by `Context.checkpoint()` (and progress, pages, pace).

    A task may clean up on it but should let it propagate: the task's state is recorded by
    Taskline, not by the task.
    """


class Cancelled(RunStopped):
    """A cancel of this task was requested: it ends CANCELLED."""


class Superseded(RunStopped):
    """Another attempt holds this task now (this run's lease lapsed): nothing more it writes
    counts."""


class Context(Protocol):
    """One run of one task."""

    @property
    def task_id(self) -> str: ...

    @property
    def attempt(self) -> int:
        """1 for the first run, 2 for the next (a retry or a rerun after a lost run)…"""
        ...

    @property
    def deadline(self) -> float:
        """When the soft time limit strikes, on the `time.monotonic()` clock."""
        ...

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        """A logger whose every line names this task."""
        ...

    @property
    def settings(self) -> "Settings":
        """The settings of this process (TASKLINE_*): secrets a task needs among them."""
        ...

    def progress(self, done: float, total: float, value: Any = None, **extra: Any) -> None:
        """Report `done` of `total` and a current value (JSON); written at most once per
        TASKLINE_PROGRESS_INTERVAL, so call it as often as is convenient."""
        ...

    def page(self, items: list[Any]) -> None:
        """Append one page of a result too large for one document (GET /tasks/{id}/pages/{n})."""
        ...

    def checkpoint(self) -> None:
        """Raise `Cancelled` or `Superseded` when the run must stop; cheap to call often."""
        ...

    def pace(self, fraction: float) -> None:
        """Wait until `fraction` of the requested `delay_seconds` has passed (demos, tests)."""
        ...
