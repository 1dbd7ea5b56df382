"""hooks.retry: a failure the policy names postpones the task SCHEDULED; others do not."""

import dataclasses
import json
from datetime import UTC

import pytest

from taskline.builtins import REVERSE
from taskline.core.records import now_ms
from taskline.core.transitions import Cancelling, Claimed
from taskline.declaring import RetryPolicy
from taskline.worker.hooks.claim import claim
from taskline.worker.hooks.retry import postpone
from taskline.worker.hooks.run import Run
from tests.integration.hooks.conftest import Worker

pytestmark = pytest.mark.integration

FLAKY = dataclasses.replace(
    REVERSE,
    retry=RetryPolicy(max_attempts=2, on=("ConnectionError",), backoff_seconds=5, jitter=False),
)


def failed(worker: Worker) -> Run:
    created = worker.create()
    run = worker.run(created.snapshot.record.id, declaration=FLAKY)
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    return run


def test_a_failure_the_policy_names_waits_scheduled_for_the_next_attempt(
    worker: Worker,
) -> None:
    run = failed(worker)
    before = now_ms()
    due = postpone(run, ConnectionResetError("source away"))  # a ConnectionError
    assert due is not None
    assert before + 5000 <= due.timestamp() * 1000 <= now_ms() + 5000
    record = worker.client.hgetall(worker.keys.task(run.task_id))
    assert record["state"] == "SCHEDULED"
    assert record["not_before"].startswith(due.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    (error,) = json.loads(record["errors"])
    assert error["type"] == "ConnectionResetError" and error["message"] == "source away"
    assert error["attempt"] == 1


def test_other_failures_and_the_last_attempt_are_not_retried(worker: Worker) -> None:
    run = failed(worker)
    assert postpone(run, ValueError("a bug")) is None
    assert worker.field(run.task_id, "state") == "STARTED"

    run.token = FLAKY.retry.max_attempts if FLAKY.retry else 0  # as on its last attempt
    assert postpone(run, ConnectionResetError("source away")) is None
    assert worker.field(run.task_id, "state") == "STARTED"


def test_a_run_asked_to_stop_is_not_retried(worker: Worker) -> None:
    run = failed(worker)
    forget = now_ms() + 60_000
    assert isinstance(worker.transitions.cancel(run.task_id, now_ms() + 5000, forget), Cancelling)
    assert postpone(run, ConnectionResetError("source away")) is None
    assert worker.field(run.task_id, "state") != "SCHEDULED"


def test_a_task_without_a_policy_is_not_retried(worker: Worker) -> None:
    created = worker.create()
    run = worker.run(created.snapshot.record.id)
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    assert postpone(run, ConnectionResetError("source away")) is None
