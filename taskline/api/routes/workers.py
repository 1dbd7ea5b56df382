"""The workers of each line: the active one and its standbys, as they report themselves
(taskline/worker/presence.py)."""

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from taskline.api.deps import CurrentUser, SettingsDep, StoreDep
from taskline.api.schemas import WorkerOut, WorkersOut
from taskline.core.lines import LINE_PATTERN
from taskline.core.records import iso

router = APIRouter(tags=["tasks"])


def active_node(reports: list[dict[str, Any]]) -> str | None:
    """The worker that runs the line. RabbitMQ delivers the line's messages to its single
    active consumer only, so it is the one that received a message last; while none has,
    the one attached first (RabbitMQ makes the first consumer attached the active one, and
    passes the line on, in order, when it leaves)."""
    if not reports:
        return None
    received = [r for r in reports if r.get("received_ms")]
    if received:
        return str(max(received, key=lambda r: r["received_ms"])["node"])
    return str(min(reports, key=lambda r: r["started_ms"])["node"])


def _moment(ms: int | None) -> str | None:
    return iso(datetime.fromtimestamp(ms / 1000, UTC)) if ms else None


@router.get("/workers", response_model=WorkersOut)
async def read_workers(
    store: StoreDep,
    settings: SettingsDep,
    user: CurrentUser,
    line: Annotated[str | None, Query(max_length=32, pattern=LINE_PATTERN)] = None,
) -> WorkersOut:
    """Every worker seen lately (of one line with `line`), line by line: the active one
    first, then the standbys; each with its line, host, process, running task, last
    heartbeat, and its host's CPU, memory and disk.

    A worker that stops reporting (killed, its host lost) drops out after
    `TASKLINE_WORKER_EXPIRY_SECONDS`. A user who is not an admin sees only the ids of their
    own running tasks.
    """
    if line is None:
        lines = list(store.lines)
    else:  # a line that is not set up has no worker
        lines = [store.lines.named(line)] if line in store.lines else []
    queues = {found.queue: found for found in lines}
    reports = [r for r in await store.workers() if r.get("queue") in queues]
    actives = {queue: active_node([r for r in reports if r["queue"] == queue]) for queue in queues}
    shown = lines[0] if line is not None and lines else store.lines.main
    active = actives.get(shown.queue)
    running = {r["task_id"] for r in reports if r.get("task_id")}
    if running and user.owner_filter is not None:
        snapshots = await store.read_many(sorted(running))
        seen = {s.record.id for s in snapshots if user.sees(s.record.owner)}
    else:
        seen = running
    order = list(queues)
    reports.sort(
        key=lambda r: (order.index(r["queue"]), r["node"] != actives[r["queue"]], r["node"])
    )
    return WorkersOut(
        workers=[
            WorkerOut(
                node=r["node"],
                line=queues[r["queue"]].name,
                queue=r["queue"],
                active=r["node"] == actives[r["queue"]],
                host=r["host"],
                pid=r["pid"],
                task_id=r["task_id"] if r.get("task_id") in seen else None,
                started_at=_moment(r["started_ms"]) or "",
                last_heartbeat=_moment(r["heartbeat_ms"]) or "",
                last_received=_moment(r.get("received_ms")),
                cpu_percent=r["cpu_percent"],
                memory=r["memory"],
                disk=r["disk"],
            )
            for r in reports
        ],
        active=active,
        expiry_seconds=settings.worker_expiry_seconds,
    )
