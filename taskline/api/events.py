"""Wakes the requests watching a task when its event stream grows.

One pub/sub connection per API process carries the ids of tasks with new events; a request
waiting on a task (long poll, SSE, WebSocket) sleeps on an asyncio.Event until its id comes by,
then reads the stream itself. No polling of Redis, no thread per waiting client. Waiters that
need the same read of a task when woken (long polls: its state) share it: a hundred waiters
woken by one change cost one read.
"""

import asyncio
import contextlib
import functools
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger("taskline.events")

T = TypeVar("T")


class EventHub:
    """Fans task-change notifications out to the requests watching those tasks."""

    def __init__(self, redis: Redis, channel: str) -> None:
        self.redis = redis
        self.channel = channel
        self._watchers: dict[str, set[asyncio.Event]] = defaultdict(set)
        # task id → what → a read begun since the task's last change, for whoever asks
        self._reads: dict[str, dict[str, asyncio.Future[Any]]] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._listen())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _wake(self, task_id: str) -> None:
        self._reads.pop(task_id, None)  # begun before the change: not shared any more
        for event in self._watchers.get(task_id, ()):
            event.set()

    def _wake_all(self) -> None:
        self._reads.clear()
        for events in self._watchers.values():
            for event in events:
                event.set()

    async def _listen(self) -> None:
        while True:
            try:
                async with self.redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            self._wake(message["data"])
                        elif message["type"] == "subscribe":
                            # Subscribed, first or again: redis-py's retry may reconnect and
                            # resubscribe by itself. Anything published meanwhile was missed,
                            # so let every watcher re-read.
                            self._wake_all()
            except (RedisError, OSError) as exc:
                log.warning("event subscription lost, retrying: %s", exc)
                self._wake_all()
                await asyncio.sleep(1.0)

    @contextlib.contextmanager
    def watch(self, task_id: str) -> Iterator[asyncio.Event]:
        """An event set whenever the task has something new (clear it before reading)."""
        event = asyncio.Event()
        self._watchers[task_id].add(event)
        try:
            yield event
        finally:
            watchers = self._watchers[task_id]
            watchers.discard(event)
            if not watchers:
                del self._watchers[task_id]

    def shared(self, task_id: str, what: str, read: Callable[[], Awaitable[T]]) -> Awaitable[T]:
        """What `read()` answers, read once for every watcher of the task that asks for the
        same `what` before the task changes again. A read begun before a change is not shared
        with those who ask after it (their event is set: they ask again)."""
        reads = self._reads.setdefault(task_id, {})
        pending = reads.get(what)
        if pending is None:
            pending = reads[what] = asyncio.ensure_future(read())
            pending.add_done_callback(functools.partial(self._read_done, task_id, what))
        # Shielded: a watcher that leaves does not cancel the read of the others.
        return asyncio.shield(pending)

    def _read_done(self, task_id: str, what: str, done: asyncio.Future[Any]) -> None:
        reads = self._reads.get(task_id)
        if reads is not None and reads.get(what) is done:
            del reads[what]
            if not reads:
                del self._reads[task_id]
        if not done.cancelled():
            done.exception()  # retrieved: its watchers got it, or all had left


async def wait_for(event: asyncio.Event, seconds: float) -> bool:
    """Wait for the event up to `seconds`; True if it was set."""
    if seconds <= 0:
        return event.is_set()
    try:
        async with asyncio.timeout(seconds):
            await event.wait()
    except TimeoutError:
        return False
    return True
