"""hooks.finish: the end a run records for what it returned or raised, with its token."""

import json

import pytest
from pydantic import ValidationError

from taskline.builtins import ReverseParams
from taskline.context import Cancelled, Superseded
from taskline.core.records import State
from taskline.core.transitions import Claimed, ResultMeta
from taskline.worker.hooks.claim import claim
from taskline.worker.hooks.finish import end_of, finish
from taskline.worker.hooks.run import Run
from tests.integration.hooks.conftest import Worker

pytestmark = pytest.mark.integration


def claimed(worker: Worker) -> Run:
    created = worker.create()
    run = worker.run(created.snapshot.record.id)
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    return run


def test_a_success_is_recorded_with_the_bytes_its_result_keeps(worker: Worker) -> None:
    run = claimed(worker)
    before = int(worker.field(run.task_id, "bytes") or 0)
    run.stored = 7
    finish(run, end_of(None) or (State.FAILURE, None))
    assert worker.field(run.task_id, "state") == "SUCCESS"
    assert int(worker.field(run.task_id, "bytes") or 0) == before + 7
    assert not worker.client.exists(worker.keys.lease(run.task_id))


def test_a_cancelled_run_ends_cancelled_and_a_failure_says_what_failed(
    worker: Worker,
) -> None:
    run = claimed(worker)
    finish(run, end_of(Cancelled("cancelled on request")) or (State.FAILURE, None))
    assert worker.field(run.task_id, "state") == "CANCELLED"

    run = claimed(worker)
    try:
        ReverseParams.model_validate({"text": 5})
    except ValidationError as exc:
        finish(run, end_of(exc) or (State.SUCCESS, None))
    assert worker.field(run.task_id, "state") == "FAILURE"
    error = json.loads(worker.field(run.task_id, "error") or "{}")
    assert error == {"type": "ValidationError", "message": "text: Input should be a valid string"}


def test_celerys_held_success_is_stored_with_a_success_and_never_with_another_end(
    worker: Worker,
) -> None:
    worker.held[State.SUCCESS] = ResultMeta('{"status": "SUCCESS"}', 60)
    run = claimed(worker)
    finish(run, (State.FAILURE, {"type": "ValueError", "message": "bad"}))
    assert worker.celery_state(run.task_id) is None  # Celery writes a FAILURE itself
    run = claimed(worker)
    finish(run, (State.SUCCESS, None))
    assert worker.celery_state(run.task_id) == "SUCCESS"
    assert 0 < worker.client.ttl(worker.keys.meta(run.task_id)) <= 60


def test_a_superseded_run_and_an_unclaimed_one_record_no_end(worker: Worker) -> None:
    assert end_of(Superseded("another attempt holds this task now")) is None
    created = worker.create()
    unclaimed = worker.run(created.snapshot.record.id)  # its claim never succeeded
    finish(unclaimed, (State.FAILURE, {"type": "RedisError", "message": "down"}))
    assert worker.field(unclaimed.task_id, "state") == "QUEUED"


def test_a_successful_unpadded_run_keeps_its_run_time_and_no_other_end_does(
    worker: Worker,
) -> None:
    kept = worker.keys.runtimes("reverse")
    run = claimed(worker)
    run.begin(ReverseParams(text="abc"), 60)
    run.started -= 0.25  # the body ran a quarter of a second
    finish(run, (State.SUCCESS, None))
    assert [int(ms) for ms in worker.client.lrange(kept, 0, -1)] == [pytest.approx(250, abs=50)]

    padded = claimed(worker)
    padded.begin(ReverseParams(text="abc", delay_seconds=1), 60)
    finish(padded, (State.SUCCESS, None))  # its time is its padding: not kept
    failed = claimed(worker)
    failed.begin(ReverseParams(text="abc"), 60)
    finish(failed, (State.FAILURE, {"type": "ValueError", "message": "bad"}))
    assert worker.client.llen(kept) == 1

    for _ in range(3):  # the list keeps the last TASKLINE_ESTIMATE_SAMPLES
        again = claimed(worker)
        again.settings = again.settings.model_copy(update={"estimate_samples": 2})
        again.begin(ReverseParams(text="abc"), 60)
        finish(again, (State.SUCCESS, None))
    assert worker.client.llen(kept) == 2
    assert int(worker.client.lindex(kept, 0) or 0) < 50
