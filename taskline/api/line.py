"""The stream of the whole line, read once per API process and fanned out to its watchers.

Every transition script appends its change to one Redis stream (core/lua/task.lua,
`line_event`). While anyone watches `GET /events`, one task of this process reads that stream
(a blocking XREAD on one connection: the line's one subscription here) and hands each batch of
events to every watcher's queue, with the new order of each line the batch changed. Nobody
watching, nothing is read.

What a new watcher is told first (a snapshot of the line) is read once for all the watchers
that arrive together: a crowd connecting at once costs a read or two, not one each.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

from fastapi.sse import ServerSentEvent
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskline.core.records import Keys
from taskline.core.replies import read_entries, text_or_none, texts

log = logging.getLogger("taskline.line")

# Kinds of change that move tasks into, within or out of the line.
LINE_KINDS = frozenset(
    {"created", "edited", "postponed", "released", "started", "ended", "deleted", "requeued"}
)
# The line's order is sent for its first tasks only.
LINE_HEAD = 100
# A watcher that falls this many batches behind is dropped (it reconnects and resumes).
QUEUE_BATCHES = 1000

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Batch:
    """Events read together: (stream id, fields) each, and the head after them (task id,
    owner) of each line they changed, by the line's name (None: none changed)."""

    events: list[tuple[str, dict[str, str]]]
    line: dict[str, list[tuple[str, str]]] | None
    # What the watchers send of it, made by the first that needs it for all the others: each
    # event by its id, and each line's new order per owner (None: all) with its data's JSON.
    sent: dict[str, ServerSentEvent] = field(default_factory=dict)
    lines: dict[tuple[str, str | None], asyncio.Future[tuple[ServerSentEvent, str]]] = field(
        default_factory=dict
    )


class LineHub:
    """One reader of the line's event stream per process, for every `/events` watcher."""

    def __init__(
        self, redis: Redis, keys: Keys, block_ms: int, lines: dict[str, Keys] | None = None
    ) -> None:
        self.redis = redis
        self.keys = keys
        # Each line's keys by name, the main line's first ('' in an event: made before lines).
        self.lines = lines or {"": keys}
        self.main = next(iter(self.lines))
        # How long one read waits for news: below the connection's socket timeout.
        self.block_ms = block_ms
        self._queues: set[asyncio.Queue[Batch | None]] = set()
        self._reader: asyncio.Task[None] | None = None
        # what → the read not begun yet, which whoever asks joins; the read under way
        self._next: dict[Hashable, asyncio.Task[Any]] = {}
        self._current: dict[Hashable, asyncio.Task[Any]] = {}

    @contextlib.contextmanager
    def watch(self) -> Iterator[asyncio.Queue[Batch | None]]:
        """A queue of the batches read from now on; None in it means the watcher fell behind
        (it ends, and its client resumes from its last event id).

        Then `follow(position)`, once the watcher has caught up to `position` by itself.
        """
        queue: asyncio.Queue[Batch | None] = asyncio.Queue(QUEUE_BATCHES)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)

    def shared(self, what: Hashable, read: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """What `read()` answers, read once for every watcher that asks for the same `what`
        before that read begins. Ask after `watch()`: a read never begins before any of the
        watchers sharing it registered their queues, so every change after what it read
        reaches all of them. It begins once the previous read of `what` has ended: one runs
        at a time while the watchers arriving meanwhile gather for the next."""
        pending = self._next.get(what)
        if pending is None:
            pending = self._next[what] = asyncio.create_task(self._in_turn(what, read))
            pending.add_done_callback(self._read_done)
        # Shielded: a watcher that leaves does not cancel the read of the others.
        return asyncio.shield(pending)

    async def _in_turn(self, what: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        this = asyncio.current_task()
        assert this is not None  # a task's own coroutine
        try:
            ahead = self._current.get(what)
            if ahead is not None:
                await asyncio.wait([ahead])  # its outcome is its own watchers'
        finally:
            if self._next.get(what) is this:
                del self._next[what]  # begun (or cancelled): later askers wait for the next
        self._current[what] = this
        try:
            return await read()
        finally:
            if self._current.get(what) is this:
                del self._current[what]

    @staticmethod
    def _read_done(done: asyncio.Task[Any]) -> None:
        if not done.cancelled():
            done.exception()  # retrieved: its watchers got it, or all had left

    def follow(self, position: str) -> None:
        """Make sure the stream is read: a reader starting now starts after `position`, where
        the watcher that starts it caught up to (a running one is already past it)."""
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read(position))

    async def stop(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader

    async def _read(self, last: str) -> None:
        while self._queues:
            try:
                found = await self.redis.xread(
                    {self.keys.line_events: last}, count=500, block=self.block_ms
                )
                events = read_entries(found)
                if not events:
                    continue
                last = events[-1][0]
                changed = {
                    fields.get("line") or self.main
                    for _, fields in events
                    if fields.get("kind") in LINE_KINDS
                } & set(self.lines)
                read = sorted(changed)  # each line's head, side by side
                heads = dict(zip(read, await asyncio.gather(*map(self.head, read)), strict=True))
                self._hand_out(Batch(events, heads or None))
            except (RedisError, OSError) as exc:
                # Nothing is lost: the next read starts after the last event handed out, and
                # the watchers wait meanwhile (their keep-alives go on).
                log.warning("line stream unreadable, retrying: %s", exc)
                await asyncio.sleep(1.0)

    def _hand_out(self, batch: Batch | None) -> None:
        for queue in list(self._queues):
            try:
                queue.put_nowait(batch)
            except asyncio.QueueFull:
                self._queues.discard(queue)  # too slow: it gets a None and ends
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                queue.put_nowait(None)

    async def head(self, line: str = "") -> list[tuple[str, str]]:
        """The first waiting tasks of a line (the main line) in run order, with their owners."""
        sets = self.lines[line or self.main]
        ids = texts(await self.redis.zrange(sets.line, 0, LINE_HEAD - 1))
        if not ids:
            return []
        async with self.redis.pipeline(transaction=False) as pipe:
            for task_id in ids:
                pipe.hget(self.keys.task(task_id), "owner")
            owners = map(text_or_none, await pipe.execute())
        return [(task_id, owner or "") for task_id, owner in zip(ids, owners, strict=True)]
