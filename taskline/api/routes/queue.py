"""The line of waiting tasks."""

import asyncio
from typing import Annotated

from fastapi import APIRouter, Query

from taskline.api.deps import CurrentUser, ProducerDep, SettingsDep, StoreDep
from taskline.api.preview import budget
from taskline.api.schemas import QueueOut, task_out

router = APIRouter(tags=["tasks"])


@router.get("/queue", response_model=QueueOut)
async def read_queue(
    store: StoreDep,
    producer: ProducerDep,
    settings: SettingsDep,
    user: CurrentUser,
    limit: Annotated[int, Query(ge=1, le=100, description="How many next tasks to show.")] = 10,
) -> QueueOut:
    """Show the line: its depth, the running task, the next tasks and the workers.

    Users who are not admins see counts for everyone but only their own tasks listed.
    Large parts of the tasks are cut short, as in GET /tasks.
    """
    line, consumers = await asyncio.gather(store.queue(limit), producer.consumers())
    running, upcoming = await asyncio.gather(
        store.read_many(line["running"]), store.read_many(line["next"])
    )
    cut_to = budget(settings, len(running) + len(upcoming))
    return QueueOut(
        depth=line["depth"],
        scheduled=line["scheduled"],
        running=[task_out(s, cut_to) for s in running if user.sees(s.record.owner)],
        next=[task_out(s, cut_to) for s in upcoming if user.sees(s.record.owner)],
        workers=line["workers"],
        consumers=consumers,
    )
