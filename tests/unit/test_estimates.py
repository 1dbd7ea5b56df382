"""The estimator (core.estimates): run estimates, size buckets, remaining times, expected starts."""

from datetime import UTC, datetime, timedelta

import pytest

from taskline.builtins import GENERATE_SERIALS, LEIBNIZ_PI, REVERSE
from taskline.core.estimates import (
    bucket_of,
    remaining,
    run_estimate,
    running_expected,
    typical,
    waiting_expected,
)
from taskline.core.registry import TaskPackageError, check
from taskline.declaring import TaskDeclaration

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_the_typical_run_time_is_the_median_so_one_stalled_run_does_not_move_it() -> None:
    assert typical([]) is None
    assert typical([1000, 1000, 1000, 1000, 60_000]) == 1.0
    assert typical([1000, 3000]) == 2.0


def test_an_estimate_is_the_bucket_s_else_the_type_s_else_the_default_at_least_its_padding() -> (
    None
):
    assert run_estimate({}, [2000], [500], 9.0) == 0.5
    assert run_estimate({}, [2000], [], 9.0) == 2.0
    assert run_estimate({}, [], [], 9.0) == 9.0
    assert run_estimate({"delay_seconds": 3}, [2000], [], 9.0) == 3.0
    assert run_estimate({"delay_seconds": 1}, [2000], [], 9.0) == 2.0


def test_buckets_group_sizes_within_a_factor_of_two_only_where_a_type_declares_them() -> None:
    assert bucket_of(REVERSE, {"text": "x" * 1000}) == ""
    assert bucket_of(None, {"digits": 5}) == ""
    assert bucket_of(LEIBNIZ_PI, {"digits": 4}) == bucket_of(LEIBNIZ_PI, {"digits": 7}) == "b3"
    assert bucket_of(LEIBNIZ_PI, {"digits": 8}) == "b4"
    assert bucket_of(GENERATE_SERIALS, {"count": 1000}) == "b10"
    assert bucket_of(LEIBNIZ_PI, {}) == "b0"


def test_a_declaration_that_estimates_by_an_unknown_param_is_refused() -> None:
    wrong = TaskDeclaration(
        name="wrong",
        params=REVERSE.params,
        implementation="x.y:z",
        estimate_by="size",
        module="tests",
    )
    with pytest.raises(TaskPackageError, match="estimate_by names 'size'"):
        check(wrong)


def test_a_running_task_ends_at_its_progress_rate_once_it_reported_some() -> None:
    started = NOW - timedelta(seconds=10)
    assert remaining(started, {"percent": 25.0}, 100.0, NOW) == pytest.approx(30.0)
    assert remaining(started, {"percent": 100.0}, 100.0, NOW) == 0.0
    # no progress (or too little to say): its estimate less what it ran, never below 0
    assert remaining(started, None, 15.0, NOW) == pytest.approx(5.0)
    assert remaining(started, {"percent": 0.5}, 15.0, NOW) == pytest.approx(5.0)
    assert remaining(started, None, 4.0, NOW) == 0.0
    assert remaining(None, None, 4.0, NOW) == 4.0
    expected = running_expected(started, 30.0, NOW)
    assert (expected.start, expected.end) == (started, NOW + timedelta(seconds=30))


def test_a_waiting_task_starts_after_the_running_one_and_those_ahead() -> None:
    expected = waiting_expected(NOW, 2.0, [1.0, 3.0], 0, 5.0)
    assert expected.start == NOW + timedelta(seconds=6)
    assert expected.end == NOW + timedelta(seconds=11)
    assert (expected.ahead, expected.extrapolated) == (3, False)


def test_past_the_tasks_looked_at_the_rest_are_taken_at_their_mean() -> None:
    expected = waiting_expected(NOW, 0.0, [1.0, 3.0], 10, 1.0)
    assert expected.start == NOW + timedelta(seconds=4 + 10 * 2)
    assert (expected.ahead, expected.extrapolated) == (13, True)


def test_a_postponed_task_starts_no_earlier_than_its_time() -> None:
    later = NOW + timedelta(hours=1)
    assert waiting_expected(NOW, 2.0, [], 0, 1.0, later).start == later
    assert waiting_expected(NOW, 2.0, [], 0, 1.0, NOW).start == NOW + timedelta(seconds=2)
