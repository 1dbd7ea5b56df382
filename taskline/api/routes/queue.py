"""The lines of waiting tasks: one (`GET /queue`, by default the main line), or all."""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Query

from taskline.api.auth import User
from taskline.api.deps import CurrentUser, ProducerDep, SettingsDep, StoreDep
from taskline.api.errors import TaskNotFoundError
from taskline.api.predictions import Predictor
from taskline.api.preview import budget
from taskline.api.producer import Producer
from taskline.api.schemas import EtaOut, LinesOut, QueueOut, task_out
from taskline.api.store import TaskStore
from taskline.core.estimates import Expected
from taskline.core.lines import LINE_PATTERN, Line
from taskline.core.records import Snapshot
from taskline.core.registry import tasks_of
from taskline.core.settings import Settings

router = APIRouter(tags=["tasks"])

# A line as read: its sets, its consumers, its running and next tasks and their predictions.
Read = tuple[dict[str, Any], int | None, list[Snapshot], list[Snapshot], dict[str, Expected]]

Limit = Annotated[int, Query(ge=1, le=100, description="How many next tasks to show.")]


async def lines_out(
    store: TaskStore,
    producer: Producer,
    settings: Settings,
    user: User,
    lines: list[Line],
    limit: int,
) -> list[QueueOut]:
    """Each line: its depth, running task, next tasks and workers, as `user` may see them.
    The lines are read side by side, each with its predictions. The workers' reports are
    read once for all the lines, after them: a worker writes its report before it is
    listed, so every worker a line lists has its report."""

    predictor = Predictor(store, tasks_of(settings), settings)

    async def read(line: Line) -> Read:
        found, consumers = await asyncio.gather(
            store.queue(limit, line.name), producer.consumers(line.queue)
        )
        tasks = {s.record.id: s for s in await store.read_many(found["running"] + found["next"])}
        running = [tasks[i] for i in found["running"] if i in tasks]
        upcoming = [tasks[i] for i in found["next"] if i in tasks]
        return found, consumers, running, upcoming, await predictor.of_line(running, upcoming)

    read_lines = await asyncio.gather(*(read(line) for line in lines))
    reports = {r["node"]: r for r in await store.workers()}
    shown = []
    for line, (found, consumers, running, upcoming, expected) in zip(
        lines, read_lines, strict=True
    ):
        cut_to = budget(settings, len(running) + len(upcoming))
        shown.append(
            QueueOut(
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
                expected=[
                    EtaOut.of(s.record.id, s.record.state, expected.get(s.record.id))
                    for s in (*running, *upcoming)
                    if user.sees(s.record.owner)
                ],
            )
        )
    return shown


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
    with when each should start and end, and the workers.

    Users who are not admins see counts for everyone but only their own tasks listed.
    Large parts of the tasks are cut short, as in GET /tasks.
    """
    if line is not None and line not in store.lines:
        raise TaskNotFoundError(f"no line {line!r}: the lines are {', '.join(store.lines.names)}")
    chosen = store.lines.named(line or "")
    return (await lines_out(store, producer, settings, user, [chosen], limit))[0]


@router.get("/lines", response_model=LinesOut)
async def read_lines(
    store: StoreDep,
    producer: ProducerDep,
    settings: SettingsDep,
    user: CurrentUser,
    limit: Limit = 10,
) -> LinesOut:
    """Show every line as GET /queue shows one, in the order TASKLINE_LINES gives them."""
    shown = await lines_out(store, producer, settings, user, list(store.lines), limit)
    return LinesOut(lines=shown)
