"""hooks.result: a result too large to keep ends the run FAILURE; pages carry the run's token."""

import pytest

from taskline.context import Superseded
from taskline.core.records import dumps, now_ms
from taskline.core.transitions import Claimed
from taskline.worker.hooks.claim import claim
from taskline.worker.hooks.lease import LEASE_MS
from taskline.worker.hooks.result import ResultTooLargeError, append_page, measure
from taskline.worker.hooks.run import Run
from tests.integration.hooks.conftest import Worker

pytestmark = pytest.mark.integration


def claimed(worker: Worker, **settings: object) -> tuple[Run, int]:
    created = worker.create({"text": "abc"})
    run = worker.run(created.snapshot.record.id, **settings)
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    return run, created.turn


def test_a_result_that_fits_counts_its_bytes_and_one_past_the_limit_is_refused(
    worker: Worker,
) -> None:
    fits = "x" * 50
    run, _ = claimed(worker)
    limit = run.params_bytes + len(dumps(fits).encode())
    run, _ = claimed(worker, max_task_bytes=limit)
    measure(run, fits)
    assert run.stored == len(dumps(fits).encode())

    run, _ = claimed(worker, max_task_bytes=limit)
    with pytest.raises(ResultTooLargeError, match="not kept"):
        measure(run, fits + "x")
    assert run.stored == 0


def test_pages_are_appended_and_a_stale_runs_page_refused(worker: Worker) -> None:
    run, turn = claimed(worker)
    append_page(run, [1, 2])
    append_page(run, [3])
    assert worker.client.llen(worker.keys.pages(run.task_id)) == 2

    worker.client.delete(worker.keys.lease(run.task_id))  # a successor took the task over
    successor = worker.transitions.claim(
        run.task_id, str(turn), True, "reverse", {}, "other@host:2", LEASE_MS, False,
        forget_ms=now_ms() + 60_000,
    )  # fmt: skip
    assert isinstance(successor, Claimed)
    with pytest.raises(Superseded):
        append_page(run, ["stale"])
    assert "stale" not in str(worker.client.lrange(worker.keys.pages(run.task_id), 0, -1))
