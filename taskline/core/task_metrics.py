"""Tasks ended, by type and outcome, and their wait and run times: counted in Redis.

The worker that ends a task may run on another machine than any API process (README,
Scaling out), so these figures cannot live in a process's memory or in a directory on one
host: the process that records an end adds it here, in one hash under the deployment's
prefix, and every API process exposes the same totals at its `/metrics` (api.metrics). The
hash holds a fixed set of fields per task type (the catalogue bounds the types): a count per
outcome, and per histogram a count per bucket (not cumulative) and a sum.

One round trip per end (a pipeline of increments, no script): written after the end is
recorded, so a process that dies between the two loses that one count, never counts twice.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# Upper bounds (seconds) of the wait (created → started) and run (started → ended) buckets:
# from a trivial task on an idle line to an hour-long one.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
           120.0, 300.0, 600.0, 1800.0, 3600.0, float("inf"))  # fmt: skip
OUTCOMES = ("SUCCESS", "FAILURE", "CANCELLED")
WAIT, RUN = "wait", "run"


def key(prefix: str) -> str:
    """The hash of the deployment's ended-task figures."""
    return f"{prefix}metrics:ended"


def bucket(seconds: float) -> int:
    """The index of the first bucket that holds `seconds`."""
    for i, bound in enumerate(BUCKETS):
        if seconds <= bound:
            return i
    return len(BUCKETS) - 1


def ended(
    pipe: Any, prefix: str, name: str, outcome: str, waited: float | None, ran: float | None
) -> None:
    """Queue on `pipe` (a Redis pipeline) the increments of one end: its outcome, and the
    wait and run times that are known."""
    fields = key(prefix)
    pipe.hincrby(fields, f"ended|{name}|{outcome}", 1)
    for histogram, seconds in ((WAIT, waited), (RUN, ran)):
        if seconds is not None:
            pipe.hincrby(fields, f"{histogram}|{name}|{bucket(seconds)}", 1)
            pipe.hincrbyfloat(fields, f"{histogram}_sum|{name}", seconds)


@dataclass
class Histogram:
    """One task type's histogram: counts per bucket (not cumulative) and their sum."""

    counts: list[int] = field(default_factory=lambda: [0] * len(BUCKETS))
    total: float = 0.0


@dataclass
class Ended:
    """The figures as read: ends by (type, outcome), histograms by type."""

    ends: dict[tuple[str, str], int] = field(default_factory=dict)
    waits: dict[str, Histogram] = field(default_factory=dict)
    runs: dict[str, Histogram] = field(default_factory=dict)


def parse(raw: Mapping[str, str]) -> Ended:
    """The figures of the hash's fields (HGETALL); a field of another shape is passed over."""
    out = Ended()
    for name, value in raw.items():
        kind, _, rest = name.partition("|")
        label, _, tail = rest.rpartition("|")
        try:
            if kind == "ended" and label:
                out.ends[label, tail] = int(value)
            elif kind in (WAIT, RUN) and label:
                hist = (out.waits if kind == WAIT else out.runs).setdefault(label, Histogram())
                hist.counts[int(tail)] = int(value)
            elif kind in (f"{WAIT}_sum", f"{RUN}_sum") and not label:
                hists = out.waits if kind == f"{WAIT}_sum" else out.runs
                hists.setdefault(tail, Histogram()).total = float(value)
        except (ValueError, IndexError):
            continue
    return out
