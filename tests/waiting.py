"""The one way tests synchronise: poll a predicate until it holds or a deadline passes."""

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T], timeout: float, interval: float = 0.02, what: str = ""
) -> T:
    """Return the first truthy value of `predicate()`, or fail after `timeout` seconds
    (saying `what` was awaited, if given)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"condition not met within {timeout} s: {what or predicate}")
        time.sleep(interval)
