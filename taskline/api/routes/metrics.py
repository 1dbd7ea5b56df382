"""Prometheus metrics: tasks by state, each line (one Redis round trip) and its consumers
(RabbitMQ), the workers, and this process's password checks. Admins only: the figures tell
how busy and how big the service is.
"""

import asyncio

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from taskline.api.deps import AdminUser, AuthenticatorDep, ProducerDep, StoreDep
from taskline.api.routes.health import consumers_of
from taskline.core.records import State

router = APIRouter(tags=["health"])

_STATES = [s for s in State if s is not State.PROGRESS]


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={403: {"description": "Not an admin"}},
)
async def read_metrics(
    store: StoreDep,
    producer: ProducerDep,
    authenticator: AuthenticatorDep,
    admin: AdminUser,
) -> str:
    """Expose task counts by state, each line's depth and consumers, and live workers in
    Prometheus text format (admins only: scrape with HTTP Basic or a bearer token)."""
    (counts, sizes), consumers = await asyncio.gather(
        store.counts([s.value for s in _STATES]), consumers_of(store, producer)
    )
    out = [
        "# HELP taskline_tasks Tasks known, by state.",
        "# TYPE taskline_tasks gauge",
        *(f'taskline_tasks{{state="{s.value}"}} {counts[s.value]}' for s in _STATES),
        "# HELP taskline_queue_depth Tasks waiting their turn, by line.",
        "# TYPE taskline_queue_depth gauge",
        *(f'taskline_queue_depth{{line="{n}"}} {v}' for n, v in sizes.depth.items()),
        "# HELP taskline_scheduled Tasks postponed to a later time, by line.",
        "# TYPE taskline_scheduled gauge",
        *(f'taskline_scheduled{{line="{n}"}} {v}' for n, v in sizes.scheduled.items()),
        "# HELP taskline_consumers Consumers RabbitMQ reports on each line's queue.",
        "# TYPE taskline_consumers gauge",
        *(f'taskline_consumers{{line="{n}"}} {v}' for n, v in consumers.items() if v is not None),
        "# HELP taskline_workers Workers seen consuming in the last seconds.",
        "# TYPE taskline_workers gauge",
        f"taskline_workers {sizes.workers}",
        "# HELP taskline_password_checks_total Passwords checked (argon2) by this API process.",
        "# TYPE taskline_password_checks_total counter",
        f"taskline_password_checks_total {authenticator.checks.run}",
    ]
    return "\n".join(out) + "\n"
