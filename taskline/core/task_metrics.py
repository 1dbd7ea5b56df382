"""Tasks ended, by type and outcome, and their wait and run times: counted in Redis.

The worker that ends a task may run on another machine than any API process (README,
Scaling out), so these figures cannot live in a process's memory or in a directory on one
host: the process that records an end adds it here, in one hash under the deployment's
prefix, and every API process exposes the same totals at its `/metrics` (api.metrics). The
hash holds a fixed set of fields per task type (the catalogue bounds the types): a count per
outcome, and per histogram a count per bucket (not cumulative) and a sum.

No round trip of its own: the script that records an end counts it (core/lua/task.lua's
`count_end`, with the fields below), atomically with the end and only when it records one,
so a stale run's finish counts nothing, and an end is counted once whoever records it. The
bucket of a run's times is found here (`bucket`), so BUCKETS are defined in this one place.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field

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
