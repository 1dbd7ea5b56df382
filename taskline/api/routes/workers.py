"""The workers of the line: the active one and its standbys, as they report themselves
(taskline/worker/presence.py)."""

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter

from taskline.api.deps import CurrentUser, SettingsDep, StoreDep
from taskline.api.schemas import WorkerOut, WorkersOut
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
async def read_workers(store: StoreDep, settings: SettingsDep, user: CurrentUser) -> WorkersOut:
    """Every worker seen lately: the active one first, then the standbys; each with its line,
    host, process, running task, last heartbeat, and its host's CPU, memory and disk.

    A worker that stops reporting (killed, its host lost) drops out after
    `TASKLINE_WORKER_EXPIRY_SECONDS`. A user who is not an admin sees only the ids of their
    own running tasks.
    """
    reports = [r for r in await store.workers() if r.get("queue") == settings.queue]
    active = active_node(reports)
    running = {r["task_id"] for r in reports if r.get("task_id")}
    if running and user.owner_filter is not None:
        snapshots = await store.read_many(sorted(running))
        seen = {s.record.id for s in snapshots if user.sees(s.record.owner)}
    else:
        seen = running
    reports.sort(key=lambda r: (r["node"] != active, r["node"]))
    return WorkersOut(
        workers=[
            WorkerOut(
                node=r["node"],
                queue=r["queue"],
                active=r["node"] == active,
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
