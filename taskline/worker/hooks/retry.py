"""After a failed run: the task waits for its next attempt if its retry policy names the failure.

A failure the task type's policy retries ends the run, not the task: the record waits
SCHEDULED (released into the line by the scheduler) after a capped, jittered backoff
(worker.retries), keeping the failure in `errors` and its history. The caller then ends the
run as Celery's RETRY, never FAILURE, so Celery's result backend tells no other story than
the record. A run asked to stop is not retried; a stale one stops.
"""

from datetime import UTC, datetime

from taskline.context import Superseded
from taskline.core.previews import cut
from taskline.core.records import now_ms
from taskline.core.transitions import Cancelling, Stale
from taskline.worker.hooks.finish import describe
from taskline.worker.hooks.run import Run
from taskline.worker.retries import backoff, retries


def postpone(run: Run, exc: Exception) -> datetime | None:
    """When the task's next attempt is due, if its policy retries this failure of the run's
    body; None when it does not (the run ends FAILURE)."""
    policy = run.declaration.retry if run.declaration is not None else None
    if policy is None or not retries(policy, exc, run.token):
        return None
    error, _ = cut(
        {"type": type(exc).__name__, "message": describe(exc)}, run.settings.preview_bytes
    )
    due = now_ms() + round(backoff(policy, run.token) * 1000)
    outcome = run.transitions.retry(
        run.task_id, run.token, error, due, kept=run.settings.retry_errors_kept
    )
    if isinstance(outcome, Stale):
        raise Superseded("another attempt holds this task now") from exc
    if isinstance(outcome, Cancelling):
        return None  # asked to stop: it ends as a failure does, not run again
    return datetime.fromtimestamp(due / 1000, UTC)
