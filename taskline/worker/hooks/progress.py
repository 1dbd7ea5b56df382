"""During a run: its progress, written at most once per `progress_interval`.

The first report comes after one interval: a run that ends within it reports none (its
SUCCESS follows at once, and a trivial task costs no extra round trip). A run that reported
progress also reports its end (100 %). A run padded by `delay_seconds` reports the smaller of
the share of its work done and the share of its delay passed, so its progress rises with
the time it waits and reaches 100 % only at the end. The record is written first: its script
refuses a stale run, which then writes nothing else (not even Celery's PROGRESS state).
"""

import time
from typing import Any

from taskline.context import Superseded
from taskline.worker.hooks.cancellation import CANCEL_CHECK_INTERVAL, check
from taskline.worker.hooks.run import Run


def report(run: Run, current: float, total: float, value: Any, extra: dict[str, Any]) -> None:
    """The run did `current` of `total` (the current `value`, `extra` fields): written if an
    interval passed since the last write, or if it is the end of a run that reported."""
    check(run)
    run.work = (current, total, value, extra)
    write(run, ended=current >= total and run.reported)


def write(run: Run, ended: bool = False) -> None:
    """Write the work last reported, unless within an interval of the last write (an end is
    written at once), or the same as the last written."""
    now = time.monotonic()
    if not ended and now - run.last_progress < run.settings.progress_interval:
        return
    run.last_progress = now
    run.reported = True
    current, total, value, extra = run.work
    share = current / total if total else 1.0
    if run.delay:
        share = min(share, (now - run.started) / run.delay)
    meta = {
        "percent": round(100.0 * min(share, 1.0), 2),
        "current": current,
        "total": total,
        "intermediate": value,
        **extra,
    }
    if meta == run.written:
        return  # the same report again (a run's end is reached by more than one path)
    run.written = meta
    shown = run.settings.preview_bytes
    if not run.transitions.progress(run.task_id, run.token, meta, event_bytes=shown):
        raise Superseded("another attempt holds this task now")
    run.celery_progress(meta)


def pace(run: Run, fraction: float) -> None:
    """Wait until `fraction` of the run's delay has passed, reporting progress meanwhile."""
    while True:
        check(run)
        behind = run.delay * fraction - (time.monotonic() - run.started)
        if behind <= 0:
            if fraction >= 1 and run.reported:
                write(run, ended=True)  # the padded run ends at 100 %
            return
        write(run)
        time.sleep(min(behind, CANCEL_CHECK_INTERVAL))
