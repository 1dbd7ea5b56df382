"""The whole line as Server-Sent Events: what a dashboard or `taskline watch` shows.

A new watcher first gets a snapshot (running, waiting in order, postponed, recently ended);
then every change of a task it may see (`task` events, resumable by their id) and the line's
new order after changes that moved it (`line` events). An admin sees every task, a user their
own. Many watchers cost one reader of the stream per API process (api.line).
"""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from taskline.api.auth import User
from taskline.api.deps import SlotsDep, credentials, fence, token_user
from taskline.api.errors import UnauthorizedError
from taskline.api.line import LINE_HEAD, Batch, LineHub
from taskline.api.preview import budget, preview_event
from taskline.api.schemas import EventId, event_data, task_out
from taskline.api.store import TaskStore, redis_errors
from taskline.api.streams import RECHECK_SECONDS
from taskline.core.records import State
from taskline.core.replies import entries
from taskline.core.settings import Settings

router = APIRouter(tags=["tasks"])

KEEPALIVE_SECONDS = 15.0
RECENT = 20
# The most tasks a snapshot holds: running (10), waiting, postponed, recently ended.
SNAPSHOT_MOST = 10 + 2 * LINE_HEAD + RECENT
# What a watcher's queue gives when nothing came within RECHECK_SECONDS: an idle watcher
# wakes that often, to check its credentials and to send keep-alives.
_IDLE = Batch([], None)
_TERMINAL = {State.SUCCESS, State.FAILURE, State.CANCELLED}


async def line_watcher(request: Request, access_token: str | None = None) -> User:
    """The caller: as every route, or by `?access_token=` (an EventSource sends no headers)."""
    if access_token:
        return await token_user(request, access_token)
    return await credentials(request)


def stream_position(
    last_event_id: Annotated[EventId | None, Header()] = None,
    resume: Annotated[EventId | None, Query(alias="last_event_id")] = None,
) -> str | None:
    """Where to resume (the `Last-Event-ID` header, or the query parameter), checked; None to
    start with a snapshot. A dependency, so that a bad one is a 422 before the stream."""
    return last_event_id or resume


async def snapshot(store: TaskStore, user: User, settings: Settings) -> dict[str, Any]:
    """What the line looks like now, as this user may see it (large parts cut short)."""
    keys, owner = store.keys, user.owner_filter
    with redis_errors():
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.zrange(keys.index(State.STARTED.value, owner=owner), 0, 9)
            if owner is None:
                pipe.zrange(keys.line, 0, LINE_HEAD - 1)
                pipe.zcard(keys.line)
            else:
                pipe.zrange(keys.index(State.QUEUED.value, owner=owner), 0, 4 * LINE_HEAD)
                pipe.zcard(keys.index(State.QUEUED.value, owner=owner))
            pipe.zrange(keys.index(State.SCHEDULED.value, owner=owner), 0, LINE_HEAD - 1)
            pipe.zrevrange(keys.index(owner=owner), 0, 5 * RECENT)
            running, waiting, depth, postponed, newest = await pipe.execute()
    tasks = {s.record.id: s for s in await store.read_many(running + waiting + postponed + newest)}

    cut_to = budget(settings, SNAPSHOT_MOST)

    def out(ids: list[str]) -> list[dict[str, Any]]:
        return [task_out(tasks[i], cut_to).model_dump(mode="json") for i in ids if i in tasks]

    waiting = sorted(
        (i for i in waiting if i in tasks and tasks[i].position),
        key=lambda i: tasks[i].position or 0,
    )
    postponed = sorted(
        (i for i in postponed if i in tasks), key=lambda i: tasks[i].record.not_before or ""
    )
    ended = [i for i in newest if i in tasks and tasks[i].record.state in _TERMINAL][:RECENT]
    return {
        "running": out(running),
        "waiting": out(waiting[:LINE_HEAD]),
        "postponed": out(postponed),
        "recent": out(ended),
        "depth": depth,
    }


async def line_events(
    request: Request, user: User, last_event_id: str | None
) -> AsyncIterator[ServerSentEvent]:
    """The snapshot (unless resuming, and the stream still holds where it resumes), then
    every change the user may see, as they come; UnauthorizedError once the bearer token it
    was opened with no longer holds."""
    store: TaskStore = request.app.state.store
    hub: LineHub = request.app.state.line
    settings: Settings = request.app.state.settings
    fenced = fence(request, user)
    shown: object = None  # the line as this watcher was last told it
    with hub.watch() as queue:
        with redis_errors():
            oldest = entries(await store.redis.xrange(store.keys.line_events, count=1))
        trimmed = oldest and last_event_id and _order(oldest[0][0]) > _order(last_event_id)
        if last_event_id is None or trimmed:
            # A resume older than the stream's oldest entry missed trimmed events: start over.
            with redis_errors():
                newest = entries(await store.redis.xrevrange(store.keys.line_events, count=1))
            cursor = newest[0][0] if newest else "0-0"
            current = await snapshot(store, user, settings)
            shown = {"waiting": [t["id"] for t in current["waiting"]], "depth": current["depth"]}
            yield ServerSentEvent(id=cursor, event="snapshot", data=current)
        else:
            cursor = last_event_id
            with redis_errors():
                missed = entries(
                    await store.redis.xrange(store.keys.line_events, f"({cursor}", "+")
                )
            for event_id, fields in missed:
                cursor = event_id
                if user.sees(fields.get("owner", "")):
                    data = preview_event(event_data(fields), settings.preview_bytes)
                    yield ServerSentEvent(id=event_id, event="task", data=data)
        hub.follow(cursor)  # a reader starting now starts here: nothing falls in between
        sent_at = time.monotonic()
        while True:
            try:
                async with asyncio.timeout(RECHECK_SECONDS):
                    batch = await queue.get()
            except TimeoutError:
                batch = _IDLE
            await fenced.check()
            now = time.monotonic()
            if batch is None:
                return  # fell behind or lost Redis: the client resumes from its last id
            if batch is _IDLE:
                if now - sent_at >= KEEPALIVE_SECONDS:
                    sent_at = now
                    yield ServerSentEvent(comment="keep-alive")
                continue
            sent_at = now
            for sent in _visible(batch, user, cursor, settings.preview_bytes):
                yield sent
            if batch.line is not None:
                line = await _line(store, batch, user)
                if line.data != shown:  # unchanged for this user: nothing to tell
                    shown = line.data
                    yield line
            cursor = max(cursor, batch.events[-1][0], key=_order)


def _order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq)


def _visible(batch: Batch, user: User, cursor: str, cut_to: int) -> list[ServerSentEvent]:
    """The batch's events this user may see and has not had yet (large parts cut short)."""
    sent = [
        ServerSentEvent(id=event_id, event="task", data=preview_event(event_data(fields), cut_to))
        for event_id, fields in batch.events
        if _order(event_id) > _order(cursor) and user.sees(fields.get("owner", ""))
    ]
    return sent


async def _line(store: TaskStore, batch: Batch, user: User) -> ServerSentEvent:
    """The line's new order as this user sees it, and how many of theirs wait (counted once
    per batch and owner, however many watch)."""
    mine = [task_id for task_id, owner in batch.line or () if user.sees(owner)]
    owner = user.owner_filter
    if owner not in batch.depths:
        key = store.keys.line if owner is None else store.keys.index("QUEUED", owner=owner)
        batch.depths[owner] = asyncio.ensure_future(store.redis.zcard(key))
    with redis_errors():
        depth = await asyncio.shield(batch.depths[owner])
    return ServerSentEvent(event="line", data={"waiting": mine, "depth": depth})


async def stream_slot(
    slots: SlotsDep, user: Annotated[User, Depends(line_watcher)]
) -> AsyncIterator[User]:
    """The watcher, holding one of their stream slots until the stream ends (else a 429
    before it starts): the line's stream counts against the same cap as a task's."""
    async with slots.hold(user.name):
        yield user


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        401: {"description": "Not authenticated"},
        422: {"description": "Bad Last-Event-ID"},
        429: {"description": "The user has too many event streams open"},
    },
)
async def stream_line_events(
    request: Request,
    user: Annotated[User, Depends(stream_slot)],
    position: Annotated[str | None, Depends(stream_position)],
) -> AsyncIterator[ServerSentEvent]:
    """Stream every change of the tasks you may see, after a snapshot of the line."""
    try:
        async for event in line_events(request, user, position):
            yield event
    except UnauthorizedError:
        return  # its token was revoked or expired: the stream just ends
