"""Prometheus metrics (api.metrics): what every API process counted, the ended tasks the
workers counted in Redis, and what is read at the scrape: tasks by state, each line (one
Redis round trip) and its consumers (RabbitMQ), the workers, and this process's password
checks. Admins only: the figures tell how busy and how big the service is.
"""

import asyncio
from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from taskline.api import metrics
from taskline.api.deps import AdminUser, AuthenticatorDep, ProducerDep, StoreDep
from taskline.api.routes.health import consumers_of
from taskline.api.routes.workers import active_node
from taskline.core.records import State

router = APIRouter(tags=["health"])

_STATES = [s for s in State if s is not State.PROGRESS]


def _gauge(name: str, doc: str, label: str, values: dict[str, Any]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=[label])
    for key, value in values.items():
        if value is not None:
            family.add_metric([key], value)
    return family


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "Prometheus text format"},
        403: {"description": "Not an admin"},
    },
)
async def read_metrics(
    request: Request,
    store: StoreDep,
    producer: ProducerDep,
    authenticator: AuthenticatorDep,
    admin: AdminUser,
) -> Response:
    """Expose the counters of every API process, the workers' ended tasks, task counts by
    state, each line's depth and consumers, and the workers, in Prometheus text format
    (admins only: scrape with HTTP Basic or a bearer token)."""
    (counts, sizes), consumers, reports, ended, counted = await asyncio.gather(
        store.counts([s.value for s in _STATES]),
        consumers_of(store, producer),
        store.workers(),
        store.ended(),
        metrics.counted(request.app.state.metrics),
    )
    by_line: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for report in reports:
        by_line[str(report.get("line", ""))].append(report)
    workers = GaugeMetricFamily(
        "taskline_workers", "Workers seen consuming in the last seconds.", value=sizes.workers
    )
    checks = CounterMetricFamily(
        "taskline_password_checks",
        "Passwords checked (argon2) by this API process.",
        value=authenticator.checks.run,
    )
    live: list[Metric] = [
        _gauge(
            "taskline_tasks",
            "Tasks known, by state.",
            "state",
            {s.value: counts[s.value] for s in _STATES},
        ),
        _gauge("taskline_queue_depth", "Tasks waiting their turn, by line.", "line", sizes.depth),
        _gauge(
            "taskline_scheduled",
            "Tasks postponed to a later time, by line.",
            "line",
            sizes.scheduled,
        ),
        _gauge(
            "taskline_consumers",
            "Consumers RabbitMQ reports on each line's queue.",
            "line",
            consumers,
        ),
        workers,
        metrics.worker_families(reports, {n: active_node(r) for n, r in by_line.items()}),
        *metrics.ended_families(ended),
        checks,
    ]
    return Response(counted + metrics.exposed(live), media_type=CONTENT_TYPE_LATEST)
