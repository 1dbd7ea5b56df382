"""hooks.claim: a message's turn claimed, skipped, or held while a live run holds the lease."""

import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from pydantic import ValidationError

from taskline.builtins import ReverseParams
from taskline.core.records import State
from taskline.core.transitions import Claimed, Edited, ResultMeta, Skipped
from taskline.worker.hooks.claim import claim, validated
from tests.integration.hooks.conftest import Worker
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

FOREVER = 2**42


def test_the_current_turn_is_claimed_and_the_run_takes_its_token(worker: Worker) -> None:
    created = worker.create({"text": "abc"})
    task_id = created.snapshot.record.id
    run = worker.run(task_id)
    claimed = claim(run, str(created.turn), False, {})
    assert isinstance(claimed, Claimed) and claimed.token == run.token == 1
    assert run.params_bytes == claimed.params_bytes > 0
    assert validated(run, claimed) == ReverseParams(text="abc")  # the record's params
    assert worker.field(task_id, "state") == "STARTED"
    assert worker.field(task_id, "runner") == run.runner


def test_a_superseded_turn_is_skipped_and_the_run_holds_no_token(worker: Worker) -> None:
    created = worker.create()
    task_id = created.snapshot.record.id
    edited = worker.transitions.edit(task_id, None, None, 9, "keep", None, {}, None)
    assert edited == Edited(turn=2)
    run = worker.run(task_id)
    assert isinstance(claim(run, "1", False, {}), Skipped)
    assert run.token == 0
    assert worker.field(task_id, "state") == "QUEUED"


def test_celerys_held_started_is_stored_with_the_claim_and_never_by_a_skipped_one(
    worker: Worker,
) -> None:
    worker.held[State.STARTED] = ResultMeta('{"status": "STARTED"}', 60)
    created = worker.create()
    task_id = created.snapshot.record.id
    worker.transitions.edit(task_id, None, None, 9, "keep", None, {}, None)
    assert isinstance(claim(worker.run(task_id), str(created.turn), False, {}), Skipped)
    assert worker.celery_state(task_id) is None
    assert isinstance(claim(worker.run(task_id), str(created.turn + 1), False, {}), Claimed)
    assert worker.celery_state(task_id) == "STARTED"
    assert 0 < worker.client.ttl(worker.keys.meta(task_id)) <= 60


def test_a_redelivery_waits_while_the_run_holds_its_lease_then_is_skipped(
    worker: Worker, caplog: pytest.LogCaptureFixture
) -> None:
    created = worker.create()
    task_id = created.snapshot.record.id
    first = worker.run(task_id)
    assert isinstance(claim(first, str(created.turn), False, {}), Claimed)

    caplog.set_level(logging.INFO, logger=worker.log.name)
    redelivery = worker.run(task_id, runner="standby@host:200")
    with ThreadPoolExecutor(1) as pool:
        held = pool.submit(claim, redelivery, str(created.turn), True, {}, poll=0.01)
        wait_until(lambda: "redelivered while" in caplog.text, 10)
        assert not held.done()  # holding its turn while the first run is alive
        assert worker.transitions.finish(task_id, State.SUCCESS, None, FOREVER, token=1)
        assert isinstance(held.result(timeout=10), Skipped)
    assert redelivery.token == 0
    assert worker.field(task_id, "attempts") == "1"  # run once


def test_params_the_model_refuses_are_a_validation_error(worker: Worker) -> None:
    created = worker.create({"text": 5})
    run = worker.run(created.snapshot.record.id)
    claimed = claim(run, str(created.turn), False, {})
    assert isinstance(claimed, Claimed)
    with pytest.raises(ValidationError):
        validated(run, claimed)
