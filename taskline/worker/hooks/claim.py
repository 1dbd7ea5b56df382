"""Before a run: claim the task's record for this message, or skip the message.

A message of an unknown, cancelled, finished or superseded task is skipped without running,
so control over waiting tasks never depends on touching RabbitMQ or on Celery's in-memory
revoke list. The params come from the record, so an edit made while the task waited is the
one that runs. A redelivered message of a task whose run still holds its lease (RabbitMQ's
consumer_timeout or a lost connection requeued the message of a run that goes on, perhaps to
a standby worker) holds its turn until that run ends, then is skipped; only a lapsed lease
means the run died, and the task runs again (unless Celery stored its SUCCESS, or it was asked
to stop: then it ends so).

On a quorum queue each message was bound on delivery to the task to run now
(worker.consumer), so its turn number does not matter: a waiting task runs, a run that was
lost runs again; a message that comes to nothing while tasks wait is passed on (PassedOn),
and goes back to the queue.

Celery's STARTED of the run, held by its result backend, goes with the claim: stored only if
the message is run, under the task it runs (on a quorum queue, the task it was bound to).
"""

import time
from typing import Any

from taskline.core.records import State, now_ms
from taskline.core.transitions import Claimed, Held, PassedOn, Skipped
from taskline.core.webhooks import heard
from taskline.declaring import Params
from taskline.worker.hooks.lease import LEASE_MS
from taskline.worker.hooks.run import Run

# How often a redelivery held by a live run looks at the record again (seconds).
HOLD_POLL_SECONDS = 0.5


def claim(
    run: Run,
    turn: str | None,
    redelivered: bool,
    sent: dict[str, Any],
    *,
    poll: float = HOLD_POLL_SECONDS,
) -> Claimed | Skipped | PassedOn:
    """Take the message's turn (`turn` None for a message without one; `sent`: its params):
    Claimed gives the run its token, Skipped says why the message is not run, PassedOn why
    it goes back to the queue."""
    declaration = run.declaration
    ranged = declaration is not None and declaration.exclusive_range is not None
    meta = run.celery_held(State.STARTED)

    def attempt() -> Claimed | Held | Skipped | PassedOn:
        forget_ms = now_ms() + run.settings.retention_seconds * 1000
        return run.transitions.claim(
            run.task_id, turn, redelivered, run.name, sent, run.runner, LEASE_MS, ranged,
            forget_ms=forget_ms, meta=meta, quorum=run.settings.queue_type == "quorum",
            metrics=run.settings.metrics, heard=heard(run.settings.webhooks),
        )  # fmt: skip

    outcome = attempt()
    if isinstance(outcome, Held):
        run.log.info("redelivered while %s holds its lease: waiting for its end", outcome.holder)
    while isinstance(outcome, Held):
        # Holding the turn (rather than dropping it) keeps the line one at a time, and the
        # unacknowledged message is still there to run the task again if that run dies.
        time.sleep(poll)
        outcome = attempt()
    if isinstance(outcome, Claimed):
        run.token, run.params_bytes = outcome.token, outcome.params_bytes
        run.waited, run.claimed_at = outcome.waited, time.monotonic()
    return outcome


def validated(run: Run, claimed: Claimed) -> Params:
    """The record's params, checked by the task type's model (pydantic's ValidationError
    ends the task FAILURE: bad params are never retried)."""
    model = run.declaration.params if run.declaration is not None else Params
    return model.model_validate(claimed.params)
