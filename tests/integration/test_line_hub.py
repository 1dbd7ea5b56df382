"""The line hub's shared reads: watchers that arrive together share one read of what they are
told first, and none is handed a read that began before it registered its queue."""

import asyncio
from collections.abc import Awaitable, Callable
from contextlib import ExitStack

import pytest
from redis.asyncio import Redis

from taskline.api.line import LineHub
from taskline.core.records import Keys
from tests.processes import isolated_env, settings_of

pytestmark = pytest.mark.integration

WATCHERS = 200


class Reads:
    """A read that counts itself, notes how many run at once, and answers (its number) only
    once its gate opens."""

    def __init__(self) -> None:
        self.begun = 0
        self.running = 0
        self.most_at_once = 0
        self.gates: list[asyncio.Event] = []
        self._changed = asyncio.Condition()

    async def __call__(self) -> int:
        async with self._changed:
            self.begun += 1
            number = self.begun
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
            self.gates.append(asyncio.Event())
            self._changed.notify_all()
        await self.gates[number - 1].wait()
        self.running -= 1
        return number

    async def reach(self, count: int) -> None:
        """Wait until `count` reads have begun."""
        async with asyncio.timeout(10), self._changed:
            await self._changed.wait_for(lambda: self.begun >= count)


async def with_hub(scenario: Callable[[LineHub], Awaitable[None]]) -> None:
    settings = settings_of(isolated_env())
    redis = Redis.from_url(settings.redis_url, decode_responses=True)
    hub = LineHub(redis, Keys(settings.key_prefix), block_ms=100)
    try:
        await scenario(hub)
    finally:
        await hub.stop()
        await redis.aclose()


def test_watchers_arriving_together_share_one_read() -> None:
    async def scenario(hub: LineHub) -> None:
        reads = Reads()
        with ExitStack() as watching:
            for _ in range(WATCHERS):
                watching.enter_context(hub.watch())
            asked = [asyncio.ensure_future(hub.shared("snapshot", reads)) for _ in range(WATCHERS)]
            await reads.reach(1)
            reads.gates[0].set()
            assert await asyncio.gather(*asked) == [1] * WATCHERS
        assert reads.begun == 1

    asyncio.run(with_hub(scenario))


def test_a_read_under_way_is_not_shared_with_watchers_who_arrive_during_it() -> None:
    """They gather for the next read, which begins once the one under way has ended."""

    async def scenario(hub: LineHub) -> None:
        reads = Reads()
        with hub.watch():
            early = asyncio.ensure_future(hub.shared("snapshot", reads))
            await reads.reach(1)  # under way...
            with hub.watch(), hub.watch():
                late = [asyncio.ensure_future(hub.shared("snapshot", reads)) for _ in range(2)]
                other = asyncio.ensure_future(hub.shared("another owner", reads))
                await reads.reach(2)  # ...another owner's read is not held up by it
                assert not early.done() and not any(f.done() for f in late)
                reads.gates[1].set()
                assert await other == 2 and reads.begun == 2
                reads.gates[0].set()
                assert await early == 1
                await reads.reach(3)  # the next begins once the one under way has ended
                reads.gates[2].set()
                assert await asyncio.gather(*late) == [3, 3]
        assert reads.begun == 3

    asyncio.run(with_hub(scenario))


def test_a_watcher_that_leaves_does_not_cancel_the_read_of_the_others() -> None:
    async def scenario(hub: LineHub) -> None:
        reads = Reads()
        with hub.watch(), hub.watch():
            leaving = asyncio.ensure_future(hub.shared("snapshot", reads))
            staying = asyncio.ensure_future(hub.shared("snapshot", reads))
            await reads.reach(1)
            leaving.cancel()
            reads.gates[0].set()
            assert await staying == 1
            assert leaving.cancelled()

    asyncio.run(with_hub(scenario))
