"""hooks.progress: progress written at most once per interval, the first after one, the end of
a run that reported at once; a stale run's report refused; a padded run paced to 100 %."""

import json

import pytest

from taskline.builtins import ReverseParams
from taskline.context import Superseded
from taskline.core.records import now_ms
from taskline.core.transitions import Claimed
from taskline.worker.hooks.claim import claim
from taskline.worker.hooks.lease import LEASE_MS
from taskline.worker.hooks.progress import pace, report
from taskline.worker.hooks.run import Run
from tests.integration.hooks.conftest import Worker

pytestmark = pytest.mark.integration


def running(worker: Worker, interval: float, delay: float = 0) -> Run:
    created = worker.create()
    run = worker.run(created.snapshot.record.id, progress_interval=interval)
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    run.begin(ReverseParams(text="abc", delay_seconds=delay), 60)
    return run


def written(worker: Worker, run: Run) -> dict[str, object] | None:
    progress = worker.field(run.task_id, "progress")
    return json.loads(progress) if progress else None


def test_a_run_within_its_first_interval_reports_nothing_not_even_its_end(
    worker: Worker,
) -> None:
    run = running(worker, interval=60)
    for done in range(1, 11):
        report(run, done, 10, None, {})
    assert written(worker, run) is None and worker.celery_progress == []


def test_progress_is_written_once_an_interval_passed_and_the_end_at_once(
    worker: Worker,
) -> None:
    run = running(worker, interval=60)
    report(run, 1, 10, None, {})
    run.last_progress -= 60  # an interval has passed
    report(run, 2, 10, "two", {"step": 2})
    expected = {"percent": 20.0, "current": 2, "total": 10, "intermediate": "two", "step": 2}
    assert written(worker, run) == expected and worker.celery_progress == [expected]
    report(run, 3, 10, None, {})  # within the interval: not written
    assert written(worker, run) == expected
    report(run, 10, 10, None, {})  # the end of a run that reported: at once
    assert written(worker, run) == {
        "percent": 100.0, "current": 10, "total": 10, "intermediate": None,
    }  # fmt: skip
    assert len(worker.celery_progress) == 2


def test_a_stale_runs_report_is_refused_and_it_stops(worker: Worker) -> None:
    created = worker.create()
    run = worker.run(created.snapshot.record.id, progress_interval=0)
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    run.begin(ReverseParams(text="abc"), 60)
    worker.client.delete(worker.keys.lease(run.task_id))  # its lease lapsed, a successor ran
    successor = worker.transitions.claim(
        run.task_id, str(created.turn), True, "reverse", {}, "other@host:2", LEASE_MS, False,
        forget_ms=now_ms() + 60_000,
    )  # fmt: skip
    assert isinstance(successor, Claimed)
    with pytest.raises(Superseded):
        report(run, 1, 10, None, {})
    assert written(worker, run) is None and worker.celery_progress == []


def test_a_padded_run_rises_with_its_delay_and_ends_at_100(worker: Worker) -> None:
    run = running(worker, interval=0.05, delay=0.5)
    report(run, 10, 10, None, {})  # the work is done at once; the delay is not
    pace(run, 1.0)
    percents = [meta["percent"] for meta in worker.celery_progress]
    assert percents == sorted(percents) and len(percents) >= 3
    assert percents[0] < 50 and percents[-1] == 100.0
    assert written(worker, run) == worker.celery_progress[-1]
