"""The lines of waiting tasks: one (`GET /queue`, by default the main line), or all."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from taskline.api.auth import User
from taskline.api.deps import CurrentUser, ProducerDep, SettingsDep, StoreDep
from taskline.api.errors import TaskNotFoundError
from taskline.api.preview import budget
from taskline.api.producer import Producer
from taskline.api.schemas import LinesOut, QueueOut, task_out
from taskline.api.store import TaskStore
from taskline.core.lines import LINE_PATTERN, Line
from taskline.core.settings import Settings

router = APIRouter(tags=["tasks"])

Limit = Annotated[int, Query(ge=1, le=100, description="How many next tasks to show.")]


async def line_out(
    store: TaskStore, producer: Producer, settings: Settings, user: User, line: Line, limit: int
) -> QueueOut:
    """One line: its depth, running task, next tasks and workers, as `user` may see them."""
    found, consumers = await asyncio.gather(
        store.queue(limit, line.name), producer.consumers(line.queue)
    )
    running, upcoming = await asyncio.gather(
        store.read_many(found["running"]), store.read_many(found["next"])
    )
    reports = {r["node"]: r for r in await store.workers()}
    cut_to = budget(settings, len(running) + len(upcoming))
    return QueueOut(
        line=line.name,
        queue=line.queue,
        depth=found["depth"],
        scheduled=found["scheduled"],
        running=[task_out(s, cut_to) for s in running if user.sees(s.record.owner)],
        next=[task_out(s, cut_to) for s in upcoming if user.sees(s.record.owner)],
        workers=[
            node
            for node in found["workers"]
            if reports.get(node, {}).get("queue", line.queue) == line.queue
        ],
        consumers=consumers,
    )


@router.get("/queue", response_model=QueueOut, responses={404: {"description": "No such line"}})
async def read_queue(
    store: StoreDep,
    producer: ProducerDep,
    settings: SettingsDep,
    user: CurrentUser,
    limit: Limit = 10,
    line: Annotated[
        str | None,
        Query(max_length=32, pattern=LINE_PATTERN, description="The line; default: the main."),
    ] = None,
) -> QueueOut:
    """Show a line (by default the main line): its depth, the running task, the next tasks
    and the workers.

    Users who are not admins see counts for everyone but only their own tasks listed.
    Large parts of the tasks are cut short, as in GET /tasks.
    """
    if line is not None and line not in store.lines:
        raise TaskNotFoundError(f"no line {line!r}: the lines are {', '.join(store.lines.names)}")
    chosen = store.lines.named(line or "")
    return await line_out(store, producer, settings, user, chosen, limit)


@router.get("/lines", response_model=LinesOut)
async def read_lines(
    store: StoreDep,
    producer: ProducerDep,
    settings: SettingsDep,
    user: CurrentUser,
    limit: Limit = 10,
) -> LinesOut:
    """Show every line as GET /queue shows one, in the order TASKLINE_LINES gives them."""
    found = await asyncio.gather(
        *(line_out(store, producer, settings, user, line, limit) for line in store.lines)
    )
    return LinesOut(lines=list(found))
