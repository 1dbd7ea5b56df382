"""A retry policy at run time: whether a failure is retried, and how long until the next attempt.

The declaration names exception types as text (the API never imports an implementation's
exceptions), so a failure matches by the names of its class and its bases.
"""

import random
from collections.abc import Callable

from taskline.declaring import RetryPolicy

# 2**63 seconds outlasts any cap: a larger exponent only risks a float overflow.
MAX_DOUBLINGS = 63


def names_of(exc: BaseException) -> set[str]:
    """Every name a policy may give this failure: each class of its MRO, as `Name` and as
    `module.QualName`."""
    found = set()
    for cls in type(exc).__mro__:
        found.add(cls.__name__)
        found.add(f"{cls.__module__}.{cls.__qualname__}")
    return found


def retries(policy: RetryPolicy, exc: BaseException, attempt: int) -> bool:
    """Whether the failure of attempt `attempt` (1, 2, …) earns another attempt."""
    return attempt < policy.max_attempts and not names_of(exc).isdisjoint(policy.on)


def backoff(policy: RetryPolicy, attempt: int, draw: Callable[[], float] = random.random) -> float:
    """Seconds to wait after attempt `attempt` failed: `backoff_seconds * 2**(attempt-1)`, at
    most `backoff_cap_seconds`; with jitter, anywhere from 0 to that (full jitter: failures
    of many tasks at once do not come back at once). `draw` gives a number in [0, 1)."""
    doublings = min(max(attempt - 1, 0), MAX_DOUBLINGS)
    wait = min(policy.backoff_seconds * 2.0**doublings, policy.backoff_cap_seconds)
    return wait * draw() if policy.jitter else wait
