"""The API's Prometheus figures: what this process counts, and what `/metrics` adds at a scrape.

Counted by each API process (prometheus_client): tasks submitted by type (on a 202 that
created a task; an idempotent replay is no new task) and HTTP requests and their latency by
method, route template and status (api.access names the template and times the request:
never a raw path, which would make every id a new series). With `PROMETHEUS_MULTIPROC_DIR`
set, as supervisord and `make run` set it, these go to files in that directory and a scrape
of any process adds up every process's (prometheus_client's multiprocess mode; the directory
is emptied when the stack starts, as that mode requires). Without it, a scrape tells its own
process's alone.

Ended tasks and their wait and run times are counted by the script that records the end
(the worker's finish, mostly), in Redis (core.task_metrics), not in that directory: a
worker may run on another machine than the API, and a directory is one host's. Everything
else is read from Redis and RabbitMQ at the scrape: tasks by state, each line's depth,
postponed tasks and consumers, and the workers seen.
"""

import asyncio
import os
from bisect import bisect_left
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.multiprocess import MultiProcessCollector

from taskline.core import task_metrics

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
# The latency buckets (seconds) of HTTP requests: a hot read takes about a millisecond; a
# long poll or a stream is timed once it ends.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
                   2.5, 5.0, 10.0, 30.0, 60.0, float("inf"))  # fmt: skip
# Methods counted by name; any other a client sends counts as OTHER, so that a client cannot
# add series at will.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "WS"})
UNMATCHED = "unmatched"  # the route of a request that no route answered (a 404, mostly)
# Requests are added up in memory and written this long after the first of them (and before
# a scrape, and at shutdown): a process killed outright loses at most that much of its counts.
FLUSH_SECONDS = 1.0


class ProcessMetrics:
    """This process's counters: submissions, and HTTP requests with their latency."""

    def __init__(self) -> None:
        # A registry of its own: an app made twice in one process (tests) counts afresh.
        self.registry = CollectorRegistry(auto_describe=False)
        self.submitted = Counter(
            "taskline_tasks_submitted",
            "Tasks created and accepted (202), by task type.",
            ["type"],
            registry=self.registry,
        )
        self.requests = Counter(
            "taskline_http_requests",
            "HTTP requests and WebSocket sessions answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "taskline_http_request_duration_seconds",
            "Seconds from a request's arrival to its answer's end, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        # The children by their labels: labels() takes a lock and builds a key each time.
        self._types: dict[str, Any] = {}
        self._requests: dict[tuple[str, str | None, int], tuple[Any, Any]] = {}
        # Requests not written yet, by labels: count, sum of seconds, count per bucket.
        self._pending: dict[tuple[str, str | None, int], list[float]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def created(self, name: str) -> None:
        """A task of type `name` was created and accepted."""
        child = self._types.get(name)
        if child is None:
            child = self._types[name] = self.submitted.labels(name)
        child.inc()

    def answered(self, method: str, route: str | None, status: int, seconds: float) -> None:
        """A request was answered (api.access: its template, status and duration); added up
        in memory, written at the next flush. Kept by label, not by the raw method: a server
        that passes on any method a client makes up (h11) would grow the process otherwise."""
        key = (method if method in METHODS else "OTHER", route, status)
        row = self._pending.get(key)
        if row is None:
            if not self._pending:
                self._schedule()
            row = self._pending[key] = [0.0] * (len(LATENCY_BUCKETS) + 2)
        row[0] += 1
        row[1] += seconds
        row[2 + bisect_left(LATENCY_BUCKETS, seconds)] += 1  # the first bound >= seconds

    def flush(self) -> None:
        """Write the requests added up since the last flush: one increment per series and
        bucket, however many requests (an increment in the multiprocess directory costs
        about 2 µs, a tenth of a second's requests share it)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        pending, self._pending = self._pending, {}
        for (method, route, status), row in pending.items():
            requests, latency = self._children(method, route, status)
            requests.inc(row[0])
            # The histogram's own series, as observe() writes them, a bucket at a time.
            latency._sum.inc(row[1])
            for bucket, count in enumerate(row[2:]):
                if count:
                    latency._buckets[bucket].inc(count)

    def _children(self, method: str, route: str | None, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        children = self._requests.get(key)
        if children is None:
            path = route or UNMATCHED
            children = self._requests[key] = (
                self.requests.labels(method, path, str(status)),
                self.latency.labels(method, path),
            )
        return children

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a test): written at the next flush() called
            return
        self._timer = loop.call_later(FLUSH_SECONDS, self.flush)


def multiprocess_dir() -> str | None:
    """The directory every API process writes its counters to, made if missing; None when
    each process keeps its own."""
    path = os.environ.get(MULTIPROCESS_DIR)
    if path:
        os.makedirs(path, mode=0o700, exist_ok=True)
    return path or None


async def counted(process: ProcessMetrics | None) -> bytes:
    """The counters of every API process (multiprocess mode) or of this one; nothing when
    this process counts nothing (TASKLINE_METRICS=false)."""
    if process is not None:
        process.flush()
    path = multiprocess_dir()
    if path is not None:

        def every_process() -> bytes:
            registry = CollectorRegistry(auto_describe=False)
            MultiProcessCollector(registry, path=path)  # type: ignore[no-untyped-call]
            return generate_latest(registry)

        return await asyncio.to_thread(every_process)  # reads a file per process
    return generate_latest(process.registry) if process is not None else b""


class Families:
    """A collector of metric families made at one scrape."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self.families = list(families)

    def collect(self) -> Iterator[Metric]:
        return iter(self.families)


def exposed(families: Iterable[Metric]) -> bytes:
    """Families in Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(Families(families))
    return generate_latest(registry)


def ended_families(ended: task_metrics.Ended) -> list[Metric]:
    """The ended-task counters and the wait and run histograms, as the workers counted them."""
    ends = CounterMetricFamily(
        "taskline_tasks_ended",
        "Tasks ended, by task type and outcome (SUCCESS, FAILURE, CANCELLED), deployment-wide.",
        labels=["type", "outcome"],
    )
    for (name, outcome), value in sorted(ended.ends.items()):
        ends.add_metric([name, outcome], value)
    families: list[Metric] = [ends]
    for histogram, what, by_type in (
        ("wait", "from creation to start", ended.waits),
        ("run", "from start to end", ended.runs),
    ):
        family = HistogramMetricFamily(
            f"taskline_task_{histogram}_seconds",
            f"Seconds a task took {what}, by task type, deployment-wide.",
            labels=["type"],
        )
        for name, hist in sorted(by_type.items()):
            running, buckets = 0, []
            for bound, count in zip(task_metrics.BUCKETS, hist.counts, strict=True):
                running += count
                buckets.append(("+Inf" if bound == float("inf") else repr(bound), running))
            family.add_metric([name], buckets, hist.total)
        families.append(family)
    return families


def worker_families(reports: list[dict[str, Any]], active: dict[str, str | None]) -> Metric:
    """One series per worker reporting itself (GET /workers' reports): 1 for the line's active
    consumer, 0 for a standby."""
    family = GaugeMetricFamily(
        "taskline_worker_up",
        "Workers reporting themselves, by node and line: 1 active, 0 standby.",
        labels=["node", "line"],
    )
    for report in reports:
        node, line = str(report.get("node", "")), str(report.get("line", ""))
        family.add_metric([node, line], 1 if active.get(line) == node else 0)
    return family


def _gauge(name: str, doc: str, label: str, values: dict[str, Any]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in values.items():
        if value is not None:
            family.add_metric([key], value)
    return family


def scraped(
    counts: dict[str, int],
    depth: dict[str, int],
    scheduled: dict[str, int],
    consumers: dict[str, int | None],
    workers: int,
    reports: list[dict[str, Any]],
    active: dict[str, str | None],
    ended: task_metrics.Ended,
    checks: int,
) -> list[Metric]:
    """The families read at a scrape: tasks by state, each line's depth, postponed tasks and
    consumers (None: RabbitMQ did not say), the workers seen, their reports and each line's
    active node, the ended tasks, and this process's password checks."""
    return [
        _gauge("taskline_tasks", "Tasks known, by state.", "state", dict(counts)),
        _gauge("taskline_queue_depth", "Tasks waiting their turn, by line.", "line", dict(depth)),
        _gauge(
            "taskline_scheduled",
            "Tasks postponed to a later time, by line.",
            "line",
            dict(scheduled),
        ),
        _gauge(
            "taskline_consumers",
            "Consumers RabbitMQ reports on each line's queue.",
            "line",
            dict(consumers),
        ),
        GaugeMetricFamily(
            "taskline_workers", "Workers seen consuming in the last seconds.", value=workers
        ),
        worker_families(reports, active),
        *ended_families(ended),
        CounterMetricFamily(
            "taskline_password_checks",
            "Passwords checked (argon2) by this API process.",
            value=checks,
        ),
    ]
