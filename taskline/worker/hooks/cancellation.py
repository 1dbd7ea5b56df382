"""During a run: whether it must stop, asked at each of its steps (checkpoint, progress, pace).

A cancel of a running task is cooperative: the run looks for the request at its steps and
ends CANCELLED. It looks at most every CANCEL_CHECK_INTERVAL, so a step called in a tight
loop costs nothing, and not before its first interval: the claim found no request, so a
trivial task costs no extra round trip. A run its lease keeper found stale stops at once.
"""

import time

from taskline.context import Cancelled, Superseded
from taskline.worker.hooks.run import Run

# How often a running task looks for a cancel request (seconds).
CANCEL_CHECK_INTERVAL = 0.1


def check(run: Run) -> None:
    """Raise Superseded if another attempt holds the task, Cancelled if a cancel was asked."""
    if run.stale:
        raise Superseded("another attempt holds this task now")
    now = time.monotonic()
    if now - run.last_cancel_check < CANCEL_CHECK_INTERVAL:
        return
    run.last_cancel_check = now
    if run.store.hget(run.transitions.keys.task(run.task_id), "cancel_requested"):
        raise Cancelled("cancelled on request")
