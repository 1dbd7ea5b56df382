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

from taskline.api import metrics
from taskline.api.deps import AdminUser, AuthenticatorDep, ProducerDep, StoreDep
from taskline.api.routes.health import consumers_of
from taskline.api.routes.workers import active_node
from taskline.core.records import State

router = APIRouter(tags=["health"])

_STATES = [s for s in State if s is not State.PROGRESS]


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
    active = {line: active_node(found) for line, found in by_line.items()}
    live = metrics.scraped(
        counts, sizes.depth, sizes.scheduled, consumers, sizes.workers, reports, active, ended,
        authenticator.checks.run,
    )  # fmt: skip
    return Response(counted + metrics.exposed(live), media_type=CONTENT_TYPE_LATEST)
