"""The whole line as Server-Sent Events: what a dashboard or `taskline watch` shows.

A new watcher first gets a snapshot (running, waiting in order, postponed, recently ended);
then every change of a task it may see (`task` events, resumable by their id) and a line's
new order after changes that moved it (`line` events, each naming its line). An admin sees
every task, a user their own; `?line=` keeps one line's. Many watchers cost one reader of the
stream per API process (api.line).

What a watcher is told first is read before its response starts, so that a Redis that cannot
answer is a 503 rather than a stream cut short after its 200; and once for all the watchers of
the same owner filter arriving together, so that hundreds connecting at once cost a few reads.
"""

import asyncio
import functools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.sse import EventSourceResponse, ServerSentEvent

from taskline.api.auth import User
from taskline.api.deps import SlotsDep, credentials, fence, token_user
from taskline.api.errors import TaskNotFoundError, UnauthorizedError
from taskline.api.line import LINE_HEAD, Batch, LineHub
from taskline.api.preview import budget, preview_event
from taskline.api.schemas import EventId, event_data, task_out
from taskline.api.store import TaskStore, redis_errors
from taskline.api.streams import RECHECK_SECONDS
from taskline.core.lines import LINE_PATTERN
from taskline.core.records import State, dumps
from taskline.core.replies import Entry, entries
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


@dataclass(frozen=True, slots=True)
class Opening:
    """What a watcher is told before the line's changes, as sent (the snapshot, or the changes
    it missed), where in the line's stream that leaves it, and each line as it was told (the
    data of a `line` event as JSON, by line; a line not in it: not told)."""

    events: list[ServerSentEvent]
    cursor: str
    shown: dict[str, str]


@dataclass(frozen=True, slots=True)
class Watch:
    """An admitted watcher: who, the line it watches (None: all), its queue of the line's
    batches, what it is told first."""

    user: User
    line: str | None
    queue: asyncio.Queue[Batch | None]
    opening: Opening


async def line_watcher(request: Request, access_token: str | None = None) -> User:
    """The caller: as every route, or by `?access_token=` (an EventSource sends no headers)."""
    if access_token:
        return await token_user(request, access_token)
    return await credentials(request)


def line_filter(
    line: Annotated[
        str | None,
        Query(max_length=32, pattern=LINE_PATTERN, description="One line's tasks only."),
    ] = None,
) -> str | None:
    """The line a watcher keeps to (None: every line)."""
    return line


def _of_line(fields: dict[str, str], line: str | None, main: str) -> bool:
    """Whether a stored change is of `line` (None: any); '' names the main line."""
    return line is None or (fields.get("line") or main) == line


def stream_position(
    last_event_id: Annotated[EventId | None, Header()] = None,
    resume: Annotated[EventId | None, Query(alias="last_event_id")] = None,
) -> str | None:
    """Where to resume (the `Last-Event-ID` header, or the query parameter), checked; None to
    start with a snapshot. A dependency, so that a bad one is a 422 before the stream."""
    return last_event_id or resume


async def snapshot(
    store: TaskStore, owner: str | None, settings: Settings, line: str | None = None
) -> Opening:
    """What the lines (or `line`) look like now to the watchers of `owner` (None: all),
    large parts cut short, as the `snapshot` event; it stands at the line stream's last
    entry, read first. Waiting tasks of several lines come line by line, each in its order."""
    keys = store.keys
    with redis_errors():
        async with store.redis.pipeline(transaction=False) as pipe:
            pipe.xrevrange(keys.line_events, count=1)
            pipe.zrange(keys.index(State.STARTED.value, owner=owner, line=line), 0, 9)
            if owner is None and (line is not None or len(store.lines) == 1):
                sets = store.sets(line)
                pipe.zrange(sets.line, 0, LINE_HEAD - 1)
                pipe.zcard(sets.line)
            else:
                queued = keys.index(State.QUEUED.value, owner=owner, line=line)
                pipe.zrange(queued, 0, 4 * LINE_HEAD)
                pipe.zcard(queued)
            pipe.zrange(keys.index(State.SCHEDULED.value, owner=owner, line=line), 0, LINE_HEAD - 1)
            pipe.zrevrange(keys.index(owner=owner, line=line), 0, 5 * RECENT)
            newest, running, waiting, depth, postponed, recent = await pipe.execute()
    tasks = {s.record.id: s for s in await store.read_many(running + waiting + postponed + recent)}

    cut_to = budget(settings, SNAPSHOT_MOST)

    def out(ids: list[str]) -> list[dict[str, Any]]:
        return [task_out(tasks[i], cut_to).model_dump(mode="json") for i in ids if i in tasks]

    order = {name: n for n, name in enumerate(store.lines.names)}
    waiting = sorted(
        (i for i in waiting if i in tasks and tasks[i].position),
        key=lambda i: (
            order.get(tasks[i].record.line or store.lines.main.name, 0),
            tasks[i].position or 0,
        ),
    )[:LINE_HEAD]
    postponed = sorted(
        (i for i in postponed if i in tasks), key=lambda i: tasks[i].record.not_before or ""
    )
    ended = [i for i in recent if i in tasks and tasks[i].record.state in _TERMINAL][:RECENT]
    current = {
        "running": out(running),
        "waiting": out(waiting),
        "postponed": out(postponed),
        "recent": out(ended),
        "depth": depth,
    }
    cursor = entries(newest)[0][0] if newest else "0-0"
    # Made into JSON here, once for every watcher that shares it.
    event = ServerSentEvent(id=cursor, event="snapshot", raw_data=dumps(current))
    # One line shown: as its `line` event would tell it, so that an unchanged one is not told.
    one = line if line is not None else store.lines.main.name if len(store.lines) == 1 else None
    told = {} if one is None else {one: dumps({"line": one, "waiting": waiting, "depth": depth})}
    return Opening([event], cursor, told)


async def missed_since(store: TaskStore, position: str) -> list[Entry] | None:
    """The line stream's entries after `position`; None if it no longer holds all of them
    (its oldest entry is later: a resume from there would miss trimmed changes)."""
    with redis_errors():
        oldest = entries(await store.redis.xrange(store.keys.line_events, count=1))
        if oldest and _order(oldest[0][0]) > _order(position):
            return None
        return entries(await store.redis.xrange(store.keys.line_events, f"({position}", "+"))


async def opening(
    request: Request, user: User, position: str | None, line: str | None = None
) -> Opening:
    """What a watcher whose queue is registered is told first: the changes since `position`,
    else (none given, or trimmed from the stream since) a snapshot. Both are shared by the
    watchers asking for the same at the same moment (api.line)."""
    store: TaskStore = request.app.state.store
    hub: LineHub = request.app.state.line
    settings: Settings = request.app.state.settings
    if position is not None:
        missed = await hub.shared(
            ("missed", position), functools.partial(missed_since, store, position)
        )
        if missed is not None:
            cut_to = settings.preview_bytes
            main = store.lines.main.name
            sent = [
                _task_event(event_id, fields, cut_to)
                for event_id, fields in missed
                if user.sees(fields.get("owner", "")) and _of_line(fields, line, main)
            ]
            return Opening(sent, missed[-1][0] if missed else position, {})
    owner = user.owner_filter
    read = functools.partial(snapshot, store, owner, settings, line)
    return await hub.shared(("snapshot", owner, line), read)


async def line_events(request: Request, watch: Watch) -> AsyncIterator[ServerSentEvent]:
    """What the watcher is told first, then every change the user may see, as they come;
    UnauthorizedError once the bearer token it was opened with no longer holds."""
    store: TaskStore = request.app.state.store
    settings: Settings = request.app.state.settings
    user, queue, line = watch.user, watch.queue, watch.line
    main = store.lines.main.name
    fenced = fence(request, user)
    for event in watch.opening.events:
        yield event
    cursor = watch.opening.cursor
    shown = dict(watch.opening.shown)  # each line as this watcher was last told it
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
        for sent in _visible(batch, user, cursor, settings.preview_bytes, line, main):
            yield sent
        for changed in batch.line or {}:
            if line is not None and changed != line:
                continue
            event, told = await _line(store, batch, user, changed)
            if told != shown.get(changed):  # unchanged for this user: nothing to tell
                shown[changed] = told
                yield event
        cursor = max(cursor, batch.events[-1][0], key=_order)


def _order(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq)


def _task_event(event_id: str, fields: dict[str, str], cut_to: int) -> ServerSentEvent:
    """A stored change as a `task` event (large parts cut short), its data made into JSON."""
    data = dumps(preview_event(event_data(fields), cut_to))
    return ServerSentEvent(id=event_id, event="task", raw_data=data)


def _visible(
    batch: Batch, user: User, cursor: str, cut_to: int, line: str | None, main: str
) -> list[ServerSentEvent]:
    """The batch's events this user may see (of `line`, None: any) and has not had yet
    (large parts cut short), each made once for every watcher of this process."""
    after = _order(cursor)
    sent = []
    for event_id, fields in batch.events:
        if (
            _order(event_id) > after
            and user.sees(fields.get("owner", ""))
            and _of_line(fields, line, main)
        ):
            if event_id not in batch.sent:
                batch.sent[event_id] = _task_event(event_id, fields, cut_to)
            sent.append(batch.sent[event_id])
    return sent


async def _line(
    store: TaskStore, batch: Batch, user: User, line: str
) -> tuple[ServerSentEvent, str]:
    """A line's new order as this user sees it and how many of theirs wait there, as the
    `line` event and its data's JSON: made once per batch, line and owner, however many
    watch."""
    owner = user.owner_filter
    if (line, owner) not in batch.lines:
        batch.lines[line, owner] = asyncio.ensure_future(_line_of(store, batch, line, owner))
    with redis_errors():
        return await asyncio.shield(batch.lines[line, owner])


async def _line_of(
    store: TaskStore, batch: Batch, line: str, owner: str | None
) -> tuple[ServerSentEvent, str]:
    """The batch's line as the watchers of `owner` (None: all) see it; see `_line`."""
    head = (batch.line or {}).get(line, [])
    mine = [task_id for task_id, of in head if owner is None or of == owner]
    if owner is None:
        key = store.sets(line).line
    else:
        key = store.keys.index("QUEUED", owner=owner, line=line)
    told = dumps({"line": line, "waiting": mine, "depth": await store.redis.zcard(key)})
    return ServerSentEvent(event="line", raw_data=told), told


async def stream_slot(
    slots: SlotsDep, user: Annotated[User, Depends(line_watcher)]
) -> AsyncIterator[User]:
    """The watcher, holding one of their stream slots until the stream ends (else a 429
    before it starts): the line's stream counts against the same cap as a task's."""
    async with slots.hold(user.name):
        yield user


async def line_watch(
    request: Request,
    user: Annotated[User, Depends(stream_slot)],
    position: Annotated[str | None, Depends(stream_position)],
    line: Annotated[str | None, Depends(line_filter)],
) -> AsyncIterator[Watch]:
    """The watcher, its queue of the line's changes registered, and what it is told first,
    read before the response starts (a 503 if Redis cannot answer); the queue is given up
    when the stream ends."""
    hub: LineHub = request.app.state.line
    lines = request.app.state.store.lines
    if line is not None and line not in lines:
        raise TaskNotFoundError(f"no line {line!r}: the lines are {', '.join(lines.names)}")
    with hub.watch() as queue:
        first = await opening(request, user, position, line)
        hub.follow(first.cursor)  # a reader starting now starts here: nothing falls in between
        yield Watch(user, line, queue, first)


@router.get(
    "/events",
    response_class=EventSourceResponse,
    responses={
        401: {"description": "Not authenticated"},
        422: {"description": "Bad Last-Event-ID"},
        429: {"description": "The user has too many event streams open"},
        503: {"description": "Redis unavailable"},
    },
)
async def stream_line_events(
    request: Request, watch: Annotated[Watch, Depends(line_watch)]
) -> AsyncIterator[ServerSentEvent]:
    """Stream every change of the tasks you may see, after a snapshot of the line."""
    try:
        async for event in line_events(request, watch):
            yield event
    except UnauthorizedError:
        return  # its token was revoked or expired: the stream just ends
