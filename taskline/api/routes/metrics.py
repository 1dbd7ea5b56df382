"""Prometheus metrics: tasks by state, the line, the workers (one Redis round trip), and this
process's password checks. Admins only: the figures tell how busy and how big the service is.
"""

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from taskline.api.deps import AdminUser, AuthenticatorDep, StoreDep
from taskline.core.records import State

router = APIRouter(tags=["health"])

_STATES = [s for s in State if s is not State.PROGRESS]


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={403: {"description": "Not an admin"}},
)
async def read_metrics(store: StoreDep, authenticator: AuthenticatorDep, admin: AdminUser) -> str:
    """Expose task counts by state, queue depth and live workers in Prometheus text format
    (admins only: scrape with HTTP Basic or a bearer token)."""
    counts, line = await store.counts([s.value for s in _STATES])
    out = [
        "# HELP taskline_tasks Tasks known, by state.",
        "# TYPE taskline_tasks gauge",
        *(f'taskline_tasks{{state="{s.value}"}} {counts[s.value]}' for s in _STATES),
        "# HELP taskline_queue_depth Tasks waiting their turn.",
        "# TYPE taskline_queue_depth gauge",
        f"taskline_queue_depth {line['depth']}",
        "# HELP taskline_scheduled Tasks postponed to a later time.",
        "# TYPE taskline_scheduled gauge",
        f"taskline_scheduled {line['scheduled']}",
        "# HELP taskline_workers Workers seen consuming in the last seconds.",
        "# TYPE taskline_workers gauge",
        f"taskline_workers {line['workers']}",
        "# HELP taskline_password_checks_total Passwords checked (argon2) by this API process.",
        "# TYPE taskline_password_checks_total counter",
        f"taskline_password_checks_total {authenticator.checks.run}",
    ]
    return "\n".join(out) + "\n"
