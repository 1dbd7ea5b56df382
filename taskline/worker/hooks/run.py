"""One run of one message: what the steps of a run share, made afresh for each message.

Everything a run learns and changes lives here, not on the Celery task (a process holds one
task object per task type, for every message it runs): the token its claim returned, its
params, its clocks, its progress, whether its lease was found taken over, the bytes its
result takes. The process's Redis client, transitions and settings ride along, so each step
needs the run and nothing else; so do the two of Celery's result writes it takes part in: its
PROGRESS, and its STARTED and SUCCESS, which the result backend holds for the claim and the
finish to store with the record (worker.backend).
"""

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from taskline.core.records import State
from taskline.core.settings import Settings
from taskline.core.transitions import ResultMeta, Transitions
from taskline.declaring import Params, TaskDeclaration

# What a run last reported: done, total, current value, extra fields.
Work = tuple[float, float, Any, dict[str, Any]]


@dataclass(slots=True, eq=False)
class Run:
    """One message's run, from its claim to its end."""

    task_id: str
    name: str
    runner: str  # "node:pid", as the record names the run
    declaration: TaskDeclaration | None  # None for a task registered another way
    settings: Settings
    store: redis.Redis
    transitions: Transitions
    # Celery's own PROGRESS write of this run (its result backend, read by Flower).
    celery_progress: Callable[[dict[str, Any]], None]
    # Celery's write of STARTED or SUCCESS its result backend held for this run's claim or
    # finish to store (None: the backend stored its own, or there is none).
    celery_held: Callable[[State], ResultMeta | None]
    log: logging.Logger  # the worker's log of its runs (each line names the task)

    # The claim's: the run's attempt (every write carries it; 0 until claimed: nothing of
    # this message to finish) and the bytes of the params as stored.
    token: int = 0
    params_bytes: int = 0
    # The claim's too, for the ended-task figures (core.task_metrics): seconds the task
    # waited (None: not known) and when it was claimed, on the time.monotonic() clock.
    waited: float | None = None
    claimed_at: float = 0.0
    params: Params | None = None
    # Set as the body starts, on the time.monotonic() clock.
    started: float = 0.0
    deadline: float = 0.0  # when the soft time limit strikes
    delay: float = 0.0  # seconds the run is padded to (delay_seconds)
    last_cancel_check: float = 0.0
    last_progress: float = 0.0
    # Progress: the work last reported, whether any report was written, the last written.
    work: Work = (0, 1, None, {})
    reported: bool = False
    written: dict[str, Any] | None = None
    # Set by the lease keeper's thread: another attempt holds the task now.
    stale: bool = False
    # The bytes the result takes as stored (counted against its owner's on success).
    stored: int = 0

    def begin(self, params: Params, soft_limit: float) -> None:
        """Start the body's clocks. The claim found no cancel request, and a run shorter than
        one progress interval reports no progress: a trivial task costs no extra round trip."""
        now = time.monotonic()
        self.params = params
        self.delay = params.delay_seconds
        self.started = self.last_progress = self.last_cancel_check = now
        self.deadline = now + soft_limit
