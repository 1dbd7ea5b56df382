"""Prometheus metrics: tasks by state, the line, the workers (one Redis round trip)."""

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from api.deps import StoreDep
from core.records import State

router = APIRouter(tags=["health"])

_STATES = [s for s in State if s is not State.PROGRESS]


@router.get("/metrics", response_class=PlainTextResponse)
async def read_metrics(store: StoreDep) -> str:
    """Expose task counts by state, queue depth and live workers in Prometheus text format."""
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
    ]
    return "\n".join(out) + "\n"
