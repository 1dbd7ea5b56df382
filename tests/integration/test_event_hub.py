"""The event hub on the real Redis: waiters woken by one change share one read of the task,
and a read begun before a change is never handed to those who ask after it."""

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import ExitStack

import pytest
from redis.asyncio import Redis

from taskline.api.events import EventHub
from tests.processes import isolated_env, settings_of

pytestmark = pytest.mark.integration

WAITERS = 200


class Tally:
    """A count that can be awaited."""

    def __init__(self) -> None:
        self.count = 0
        self._changed = asyncio.Condition()

    async def bump(self) -> int:
        async with self._changed:
            self.count += 1
            self._changed.notify_all()
            return self.count

    async def reach(self, count: int) -> None:
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: self.count >= count)


class Reads(Tally):
    """A read of the task that counts itself and answers only once let through."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()

    async def __call__(self) -> int:
        number = await self.bump()
        await self.gate.wait()
        return number


async def with_hub(scenario: Callable[[EventHub, Redis, str], Awaitable[None]]) -> None:
    settings = settings_of(isolated_env())
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    channel = f"{settings.key_prefix}channel"
    hub = EventHub(redis, channel)
    try:
        await scenario(hub, redis, channel)
    finally:
        await hub.stop()
        await redis.aclose()


async def subscribed(hub: EventHub, event: asyncio.Event) -> None:
    """Start the hub and wait for its subscription (which wakes every watcher once)."""
    await hub.start()
    async with asyncio.timeout(10):
        await event.wait()
    event.clear()


def test_waiters_woken_by_one_change_share_one_read() -> None:
    async def scenario(hub: EventHub, redis: Redis, channel: str) -> None:
        reads, asked = Reads(), Tally()

        async def waiter(changed: asyncio.Event) -> int:
            await changed.wait()
            changed.clear()
            shared = hub.shared("t", "state", reads)
            await asked.bump()
            return await shared

        with ExitStack() as watching:
            events = [watching.enter_context(hub.watch("t")) for _ in range(WAITERS)]
            await subscribed(hub, events[0])
            for event in events:
                event.clear()
            waiters = [asyncio.create_task(waiter(event)) for event in events]
            await redis.publish(channel, "t")
            await asked.reach(WAITERS)
            reads.gate.set()
            assert await asyncio.gather(*waiters) == [1] * WAITERS
        assert reads.count == 1

    asyncio.run(with_hub(scenario))


def test_a_read_begun_before_a_change_is_not_shared_after_it() -> None:
    async def scenario(hub: EventHub, redis: Redis, channel: str) -> None:
        reads = Reads()
        with hub.watch("t") as changed:
            await subscribed(hub, changed)
            before = asyncio.ensure_future(hub.shared("t", "state", reads))
            joined = asyncio.ensure_future(hub.shared("t", "state", reads))
            await reads.reach(1)
            await redis.publish(channel, "t")
            async with asyncio.timeout(10):
                await changed.wait()  # the change came by...
            after = asyncio.ensure_future(hub.shared("t", "state", reads))
            await reads.reach(2)  # ...so whoever asks now reads again
            reads.gate.set()
            assert (await before, await joined, await after) == (1, 1, 2)
            other = await hub.shared("t", "record", reads)  # another read, not shared with it
            assert other == 3

    asyncio.run(with_hub(scenario))
