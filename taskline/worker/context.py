"""The `taskline.Context` a run hands its implementation, over the run (hooks.run)."""

import logging
from collections.abc import MutableMapping
from typing import Any

from taskline.core.settings import Settings
from taskline.worker.hooks import cancellation, progress, result
from taskline.worker.hooks.run import Run


class _TaskLog(logging.LoggerAdapter[logging.Logger]):
    """Every line names its task: "[task 6f1c…] message", and its `task_id` field (from
    whatever thread the task logs)."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        task_id = self.extra["task_id"] if self.extra else "?"
        kwargs["extra"] = {**kwargs.get("extra", {}), "task_id": task_id}
        return f"[task {task_id}] {msg}", kwargs


class RunContext:
    """One run of one task (see taskline.context.Context)."""

    def __init__(self, run: Run) -> None:
        self._run = run
        self._log = _TaskLog(
            logging.getLogger(f"taskline.tasks.{run.name}"), {"task_id": run.task_id}
        )

    @property
    def task_id(self) -> str:
        return self._run.task_id

    @property
    def attempt(self) -> int:
        return self._run.token

    @property
    def deadline(self) -> float:
        return self._run.deadline

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        return self._log

    @property
    def settings(self) -> Settings:
        return self._run.settings

    def progress(self, done: float, total: float, value: Any = None, **extra: Any) -> None:
        progress.report(self._run, done, total, value, extra)

    def page(self, items: list[Any]) -> None:
        result.append_page(self._run, items)

    def checkpoint(self) -> None:
        cancellation.check(self._run)

    def pace(self, fraction: float) -> None:
        progress.pace(self._run, fraction)
