"""Retry policies at run time (worker.retries): which failures are retried, and the waits."""

import random

import pytest

from taskline.declaring import RetryPolicy
from taskline.worker.retries import backoff, retries


class SourceError(Exception):
    pass


class FlakySourceError(SourceError):
    pass


def test_the_wait_doubles_from_the_first_backoff_up_to_the_cap() -> None:
    policy = RetryPolicy(max_attempts=10, backoff_seconds=0.5, backoff_cap_seconds=3, jitter=False)
    assert [backoff(policy, attempt) for attempt in range(1, 7)] == [0.5, 1, 2, 3, 3, 3]
    assert backoff(RetryPolicy(backoff_seconds=0, jitter=False), 5) == 0
    # However many attempts, no overflow: the cap.
    assert backoff(RetryPolicy(max_attempts=10**6, jitter=False), 10**6) == 300


def test_full_jitter_draws_anywhere_from_nothing_to_the_whole_wait() -> None:
    policy = RetryPolicy(backoff_seconds=2, backoff_cap_seconds=5)
    assert backoff(policy, 1, draw=lambda: 0.0) == 0
    assert backoff(policy, 2, draw=lambda: 0.5) == 2
    assert backoff(policy, 3, draw=lambda: 0.5) == 2.5  # half of the cap
    rng = random.Random(7)
    waits = [backoff(policy, 2, draw=rng.random) for _ in range(1000)]
    assert 0 <= min(waits) < 0.1 and 3.9 < max(waits) < 4
    assert len(set(waits)) == 1000  # spread: failures at once do not come back at once


@pytest.mark.parametrize(
    ("on", "retried"),
    [
        (("FlakySourceError",), True),
        (("SourceError",), True),  # a base class
        (("Exception",), True),
        ((f"{__name__}.FlakySourceError",), True),  # module.qualname
        (("TimeoutError", "OSError"), False),
        (("tests.elsewhere.FlakySourceError",), False),
        (("flakysourceerror",), False),
    ],
)
def test_a_failure_is_retried_when_its_type_or_a_base_is_named(
    on: tuple[str, ...], retried: bool
) -> None:
    policy = RetryPolicy(max_attempts=3, on=on)
    assert retries(policy, FlakySourceError("down"), 1) is retried


def test_the_last_allowed_attempt_is_not_retried() -> None:
    policy = RetryPolicy(max_attempts=3, on=("Exception",))
    assert [retries(policy, ValueError(), attempt) for attempt in (1, 2, 3, 4)] == [
        True,
        True,
        False,
        False,  # a lost run put it back in line past its last attempt
    ]
    assert not retries(RetryPolicy(max_attempts=1), ValueError(), 1)


def test_a_policy_names_its_exception_types_in_a_tuple() -> None:
    with pytest.raises(ValueError, match="in a tuple"):
        RetryPolicy(on="FlakySourceError")  # type: ignore[arg-type]  # the mistake it catches
    with pytest.raises(ValueError, match="in a tuple"):
        RetryPolicy(on=("",))
