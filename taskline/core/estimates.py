"""How long until a task runs: its run's estimate from its type's recent run times, and the
expected start and end of a waiting or running task from what is ahead of it in its line.

Run times are recorded by the worker's finish (core/lua/finish.lua): a successful run that
was not padded by `delay_seconds` pushes its milliseconds onto its type's list, and onto its
size bucket's where the type declares `estimate_by`; each list keeps the last
TASKLINE_ESTIMATE_SAMPLES. A padded run is not recorded: its run time is its padding, which
the params of a waiting task tell already.

A run's estimate is the median of its bucket's run times (of its type's while the bucket has
none; TASKLINE_ESTIMATE_DEFAULT_SECONDS while the type has none), and at least its
`delay_seconds`. The median, not the mean: one stalled or cold run does not move it.

A running task's remaining time comes from its progress rate (elapsed / share done) once it
reported some progress, else from its estimate less the time it has run (never below 0).
A waiting task starts when the running task ends and every task ahead of it has run: at most
TASKLINE_ESTIMATE_AHEAD tasks ahead are added up, and past them the rest is taken at their
mean (`extrapolated`). A postponed task starts no earlier than its `not_before`.
Everything here is pure: callers read the records and lists, and pass them in.
"""

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from taskline.declaring import TaskDeclaration

# Below this share done (%), a run's progress says too little of its rate: its estimate is used.
MIN_PROGRESS_PERCENT = 1.0


def bucket_of(declaration: TaskDeclaration | None, params: Mapping[str, Any]) -> str:
    """The size bucket of these params ('' when the type declares none): the bit length of
    the `estimate_by` param (a number's whole part, a text's or list's length), so each
    bucket holds sizes within a factor of two of each other, and a type has at most a few
    dozen buckets."""
    if declaration is None or declaration.estimate_by is None:
        return ""
    value = params.get(declaration.estimate_by)
    if isinstance(value, bool) or value is None:
        size = int(bool(value))
    elif isinstance(value, int | float):
        size = int(abs(value))
    elif isinstance(value, str | list | dict):
        size = len(value)
    else:
        return ""
    return f"b{size.bit_length()}"


def typical(samples: Sequence[int | float]) -> float | None:
    """The median run time (s) of recorded ones in ms; None for none."""
    return statistics.median(samples) / 1000.0 if samples else None


def run_estimate(
    params: Mapping[str, Any],
    by_type: Sequence[int | float],
    by_bucket: Sequence[int | float],
    default_seconds: float,
) -> float:
    """Seconds a run of these params should take: the median of its bucket's run times, or
    of its type's, or the default; at least its padding."""
    found = typical(by_bucket)
    if found is None:
        found = typical(by_type)
    if found is None:
        found = default_seconds
    return max(found, float(params.get("delay_seconds") or 0.0))


def remaining(
    started_at: datetime | None,
    progress: Mapping[str, Any] | None,
    estimate: float,
    now: datetime,
) -> float:
    """Seconds a running task should still take: from its progress rate once it reported
    progress, else its estimate less what it has run."""
    if started_at is None:
        return estimate
    elapsed = max((now - started_at).total_seconds(), 0.0)
    percent = float((progress or {}).get("percent") or 0.0)
    if MIN_PROGRESS_PERCENT <= percent < 100.0:
        return elapsed * (100.0 - percent) / percent
    if percent >= 100.0:
        return 0.0
    return max(estimate - elapsed, 0.0)


@dataclass(frozen=True, slots=True)
class Expected:
    """When a task should start and end; `ahead`: tasks counted ahead of it (the running
    one included), `extrapolated`: more were ahead than TASKLINE_ESTIMATE_AHEAD."""

    start: datetime
    end: datetime
    ahead: int
    extrapolated: bool = False


def running_expected(started_at: datetime | None, left: float, now: datetime) -> Expected:
    """A running task: started when it did, ends after what is left."""
    return Expected(start=started_at or now, end=now + timedelta(seconds=left), ahead=0)


def waiting_expected(
    now: datetime,
    busy_for: float,
    ahead: Sequence[float],
    more_ahead: int,
    own: float,
    not_before: datetime | None = None,
    running: int = 1,
) -> Expected:
    """A waiting task: after `busy_for` s (what the running task has left), the estimates of
    the tasks `ahead` looked at, and `more_ahead` beyond them at their mean; not before its
    `not_before`. `own`: its own run's estimate."""
    wait = busy_for + sum(ahead)
    if more_ahead > 0 and ahead:
        wait += more_ahead * (sum(ahead) / len(ahead))
    start = now + timedelta(seconds=wait)
    if not_before is not None and not_before > start:
        start = not_before
    return Expected(
        start=start,
        end=start + timedelta(seconds=own),
        ahead=running + len(ahead) + more_ahead,
        extrapolated=more_ahead > 0,
    )


def parse_time(text: str | None) -> datetime | None:
    """A record's ISO-8601 time (None for none)."""
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)
