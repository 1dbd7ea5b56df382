"""A run's time limits: the soft one the run sees as its deadline, and the end of a killed run.

The soft limit raises Celery's SoftTimeLimitExceeded in the body, which a task may catch;
the context shows when it strikes (`deadline`). At the hard limit, or when a run ignored its
cancel past the grace period, the worker's main process kills the pool child. The run
cannot record its end, so the main process does, once the child is gone (a thread: the main
process goes on serving meanwhile, and the next task starts). That run is named by its
runner (node and pid), so this never ends an attempt that another worker took.
"""

import logging
import threading
import time
from collections.abc import Iterable

import psutil
import redis

from taskline.core.records import State, now_ms
from taskline.core.registry import limits
from taskline.core.replies import text_or_none
from taskline.core.transitions import Transitions
from taskline.core.webhooks import ENDED
from taskline.declaring import TaskDeclaration

# How long the worker waits for a killed pool child to be gone before recording its end.
CHILD_EXIT_SECONDS = 10.0


def soft_limit(declaration: TaskDeclaration | None, otherwise: float | None) -> float:
    """Seconds a run may take before its soft limit strikes: the declared work plus the
    longest delay, or `otherwise` for a task registered another way (0: none)."""
    return limits(declaration)[0] if declaration else float(otherwise or 0)


def gone(pid: int) -> bool:
    """Whether the process has exited (a zombie has: it only waits to be reaped)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def finish_when_child_gone(
    store: redis.Redis,
    transitions: Transitions,
    task_id: str,
    end: tuple[State, dict[str, str] | None],
    *,
    node: str | None,
    retention_seconds: int,
    log: logging.Logger,
    metrics: bool = True,
    heard: Iterable[str] = ENDED,
    wait: float = CHILD_EXIT_SECONDS,
) -> threading.Thread:
    """Record the end of a run of this worker (`node`; None: not known, any) that its main
    process killed, once its child is gone (at most `wait` seconds), and count it (`metrics`,
    core.task_metrics: by the finish script, the end alone, its times not being at hand
    here; `heard`: the ended states a global webhook hears of, core.webhooks.heard); the
    thread doing it."""

    def finish() -> None:
        runner = text_or_none(store.hget(transitions.keys.task(task_id), "runner"))
        runner_node, _, pid = (runner or "").rpartition(":")
        if not pid.isdecimal() or runner_node != (node or runner_node):
            return
        deadline = time.monotonic() + wait
        while not gone(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not gone(int(pid)):
            log.warning("pool child %s of task %s outlived its stop", pid, task_id)
            return
        state, error = end
        forget_at = now_ms() + retention_seconds * 1000
        transitions.finish(
            task_id, state, error, forget_at, runner=runner, metrics=metrics, heard=heard
        )

    thread = threading.Thread(target=finish, name=f"finish-{task_id}", daemon=True)
    thread.start()
    return thread
