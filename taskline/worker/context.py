"""The `taskline.Context` a run hands its implementation, over the run's Celery task."""

import logging
import time
from collections.abc import MutableMapping
from typing import Any

from taskline.core.settings import Settings
from taskline.worker.base import TasklineTask


class _TaskLog(logging.LoggerAdapter[logging.Logger]):
    """Every line names its task: "[task 6f1c…] message"."""

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        return f"[task {self.extra['task_id'] if self.extra else '?'}] {msg}", kwargs


class RunContext:
    """One run of one task (see taskline.context.Context)."""

    def __init__(self, task: TasklineTask, params: Any) -> None:
        self._task = task
        self._params = params
        self._deadline = time.monotonic() + task.soft_limit(params)
        self._log = _TaskLog(
            logging.getLogger(f"taskline.tasks.{task.name}"), {"task_id": task.task_id}
        )

    @property
    def task_id(self) -> str:
        return self._task.task_id

    @property
    def attempt(self) -> int:
        return self._task.token

    @property
    def deadline(self) -> float:
        return self._deadline

    @property
    def logger(self) -> logging.LoggerAdapter[logging.Logger]:
        return self._log

    @property
    def settings(self) -> Settings:
        return self._task.settings

    def progress(self, done: float, total: float, value: Any = None, **extra: Any) -> None:
        self._task.progress(done, total, value, **extra)

    def page(self, items: list[Any]) -> None:
        self._task.append_page(items)

    def checkpoint(self) -> None:
        self._task.check_cancelled()

    def pace(self, fraction: float) -> None:
        self._task.pace(self._params, fraction)
