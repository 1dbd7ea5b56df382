"""After a run: its end recorded in the task's record, with the run's token.

A run that never claimed its task (token 0) records nothing. A superseded run records
nothing either: the attempt that replaced it records the end. A run stopped by its cancel
request ends CANCELLED; any other exception ends it FAILURE with the exception's type and
message, and its traceback, cut to its end (TASKLINE_TRACEBACK_BYTES), for admins to read.
A run killed by the worker's main process is ended from there (hooks.limits).

Celery's SUCCESS of the run, held by its result backend, goes with a successful end: stored
only if the run still holds its task. Celery writes any other end itself.

A successful run that was not padded (`delay_seconds` 0) records its run time for estimates
(core.estimates) in the same script as its end, and the end is counted in the ended-task
figures (core.task_metrics) with its wait and run times there too: the finish is a round
trip the run makes anyway, so the worker's cost per task does not grow (README Performance),
and a stale run, whose finish records nothing, counts nothing.
"""

import time
import traceback

from pydantic import ValidationError

from taskline.context import Cancelled, Superseded
from taskline.core.estimates import bucket_of
from taskline.core.previews import cut_to_end
from taskline.core.records import State, now_ms
from taskline.core.transitions import RunTime
from taskline.core.webhooks import heard
from taskline.worker.hooks.run import Run

# How a run ended, as its record keeps it: its state and, for a failure, its error.
End = tuple[State, dict[str, str] | None]


def describe(exc: BaseException) -> str:
    """A one-line message for users: validation errors list their fields."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc) or type(exc).__name__


def end_of(exc: BaseException | None) -> End | None:
    """The end a run that raised `exc` (None: returned) records; None when it records none."""
    if exc is None:
        return State.SUCCESS, None
    if isinstance(exc, Superseded):
        return None
    if isinstance(exc, Cancelled):
        return State.CANCELLED, None
    return State.FAILURE, {"type": type(exc).__name__, "message": describe(exc)}


def traceback_of(exc: BaseException, bound: int) -> str:
    """The traceback of a failure, cut to its last `bound` bytes of UTF-8 (its end names the
    line that raised and the exception); '' for a stop, or with a bound of 0."""
    if bound <= 0 or isinstance(exc, Superseded | Cancelled):
        return ""
    # A lone surrogate in a message could not be stored: replaced, as UTF-8 cannot carry it.
    text = "".join(traceback.format_exception(exc)).encode("utf-8", "replace").decode()
    return cut_to_end(text, bound)


def finish(run: Run, end: End, trace: str = "") -> None:
    """Record the run's end (a failure with its traceback `trace`, cut already); a success counts
    the bytes its result keeps (run.stored)."""
    if not run.token:
        return  # no claim: nothing of this message to finish
    state, error = end
    forget_at = now_ms() + run.settings.retention_seconds * 1000
    success = state is State.SUCCESS
    stored = run.stored if success else 0
    meta = run.celery_held(State.SUCCESS) if success else None
    run.transitions.finish(
        run.task_id,
        state,
        error,
        forget_at,
        token=run.token,
        stored=stored,
        meta=meta,
        traceback=trace if state is State.FAILURE else "",
        run_time=run_time(run) if success else None,
        waited=run.waited,
        ran=time.monotonic() - run.claimed_at if run.claimed_at else None,
        metrics=run.settings.metrics,
        heard=heard(run.settings.webhooks),
    )


def run_time(run: Run) -> RunTime | None:
    """The run's time to record for estimates; None for a padded run (its time is its
    padding) or one whose body never started."""
    if not run.started or run.delay or run.params is None:
        return None
    declared = run.declaration if run.declaration and run.declaration.estimate_by else None
    return RunTime(
        name=run.name,
        ms=round((time.monotonic() - run.started) * 1000),
        samples=run.settings.estimate_samples,
        bucket=bucket_of(declared, run.params.model_dump()) if declared else "",
    )
