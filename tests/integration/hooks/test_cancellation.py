"""hooks.cancellation: a cancel request stops a run at its next check, a stale run at once."""

import pytest

from taskline.builtins import ReverseParams
from taskline.context import Cancelled, Superseded
from taskline.core.records import now_ms
from taskline.core.transitions import Cancelling, Claimed
from taskline.worker.hooks.cancellation import CANCEL_CHECK_INTERVAL, check
from taskline.worker.hooks.claim import claim
from taskline.worker.hooks.run import Run
from tests.integration.hooks.conftest import Worker

pytestmark = pytest.mark.integration


def running(worker: Worker) -> Run:
    created = worker.create()
    run = worker.run(created.snapshot.record.id)
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    run.begin(ReverseParams(text="abc"), 60)
    return run


def test_a_cancel_request_stops_the_run_at_its_first_check_after_an_interval(
    worker: Worker,
) -> None:
    run = running(worker)
    forget = now_ms() + 60_000
    assert isinstance(worker.transitions.cancel(run.task_id, now_ms() + 5000, forget), Cancelling)
    # Within the first interval the run does not look (the claim found no request): a
    # trivial task costs no extra round trip.
    check(run)
    run.last_cancel_check -= CANCEL_CHECK_INTERVAL  # an interval has passed
    with pytest.raises(Cancelled):
        check(run)


def test_a_run_goes_on_when_no_cancel_was_asked(worker: Worker) -> None:
    run = running(worker)
    run.last_cancel_check -= CANCEL_CHECK_INTERVAL
    check(run)
    assert worker.field(run.task_id, "state") == "STARTED"


def test_a_stale_run_stops_at_once(worker: Worker) -> None:
    run = running(worker)
    run.stale = True  # as its lease keeper marks it
    with pytest.raises(Superseded):
        check(run)
