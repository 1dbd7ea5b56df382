"""Single-task reads gathered (api.reads) on the real Redis and read script: reads asked in one
turn of the event loop go as one script, each gets its own task, none gets a read sent before
it was asked, batches stay within their bound, and a Redis that cannot be reached is a 503
for every read of the batch."""

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from taskline.api.errors import UnavailableError
from taskline.api.reads import GatheredReads
from taskline.api.store import TaskStore
from taskline.core.records import Keys, Snapshot, State, now_ms
from taskline.core.transitions import AsyncTransitions, Created, Transitions
from tests.support import free_port

pytestmark = pytest.mark.integration


class CountedReads:
    """The real read script, noting the ids of each call; `hold` keeps its answers back
    (Redis answered, `answered` is set) until set."""

    def __init__(self, transitions: AsyncTransitions) -> None:
        self.transitions = transitions
        self.sent: list[list[str]] = []
        self.answered = asyncio.Event()
        self.hold = asyncio.Event()
        self.hold.set()

    async def __call__(self, task_ids: list[str]) -> list[Snapshot]:
        self.sent.append(task_ids)
        found = await self.transitions.read(task_ids)
        self.answered.set()
        await self.hold.wait()
        return found


def create(transitions: Transitions, task_id: str, text: str = "abc") -> None:
    created = transitions.create(
        task_id, "reverse", {"text": text}, 5, "alice", None, 100, None, 1000, None
    )
    assert isinstance(created, Created), created


def run(keys: Keys, scenario: Callable[[GatheredReads, CountedReads], Awaitable[None]]) -> None:
    async def main() -> None:
        client = Redis(decode_responses=True)
        try:
            counted = CountedReads(AsyncTransitions(client, keys))
            await scenario(GatheredReads(counted, most=5), counted)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_reads_asked_together_cost_one_script_and_each_gets_its_own_task(
    transitions: Transitions, keys: Keys
) -> None:
    for task_id in ("a", "b", "c"):
        create(transitions, task_id, text=task_id * 3)

    async def scenario(reads: GatheredReads, counted: CountedReads) -> None:
        asked = ["a", "b", "a", "unknown", "c", "a"]
        found = await asyncio.gather(*(reads.read(task_id) for task_id in asked))
        assert [s and s.record.params["text"] for s in found] == [
            "aaa",
            "bbb",
            "aaa",
            None,
            "ccc",
            "aaa",
        ]
        assert counted.sent == [["a", "b", "unknown", "c"]]  # each task read once

    run(keys, scenario)


def test_a_read_asked_after_a_change_never_gets_a_read_sent_before_it(
    transitions: Transitions, keys: Keys
) -> None:
    create(transitions, "t")

    async def scenario(reads: GatheredReads, counted: CountedReads) -> None:
        counted.hold.clear()
        before = asyncio.ensure_future(reads.read("t"))
        async with asyncio.timeout(10):
            await counted.answered.wait()  # Redis answered it; not handed out yet
        transitions.cancel("t", now_ms(), now_ms() + 60_000)  # the change
        after = asyncio.ensure_future(reads.read("t"))
        counted.hold.set()
        old, new = await before, await after
        assert old is not None and new is not None
        assert (old.record.state, new.record.state) == (State.QUEUED, State.CANCELLED)
        assert counted.sent == [["t"], ["t"]]

    run(keys, scenario)


def test_a_batch_holds_at_most_its_bound_and_the_rest_go_in_the_next(
    transitions: Transitions, keys: Keys
) -> None:
    ids = [f"t{n}" for n in range(12)]
    for task_id in ids:
        create(transitions, task_id)

    async def scenario(reads: GatheredReads, counted: CountedReads) -> None:
        found = await asyncio.gather(*(reads.read(task_id) for task_id in ids))
        assert [s and s.record.id for s in found] == ids
        assert counted.sent == [ids[0:5], ids[5:10], ids[10:12]]

    run(keys, scenario)


def test_a_read_whose_request_left_does_not_stop_the_others(
    transitions: Transitions, keys: Keys
) -> None:
    create(transitions, "t")

    async def scenario(reads: GatheredReads, counted: CountedReads) -> None:
        left = asyncio.ensure_future(reads.read("t"))
        stays = asyncio.ensure_future(reads.read("t"))
        left.cancel()
        found = await stays
        assert found is not None and found.record.id == "t"
        assert left.cancelled()

    run(keys, scenario)


def test_every_read_of_a_batch_is_a_503_when_redis_cannot_be_reached(keys: Keys) -> None:
    async def main() -> None:
        client = Redis(port=free_port(), decode_responses=True, retry=Retry(NoBackoff(), 0))
        store = TaskStore(client, keys)
        try:
            found = await asyncio.gather(
                *(store.read(task_id) for task_id in ("a", "b", "a")), return_exceptions=True
            )
            assert [type(f) for f in found] == [UnavailableError] * 3
            assert all(isinstance(f.__cause__, redis.ConnectionError) for f in found)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_a_read_of_no_task_asks_redis_nothing(keys: Keys) -> None:
    """An empty line, listing or snapshot reads no task: no script goes to Redis for it (here
    a Redis that cannot be reached, which any command would meet as a 503)."""

    async def main() -> None:
        client = Redis(port=free_port(), decode_responses=True, retry=Retry(NoBackoff(), 0))
        store = TaskStore(client, keys)
        try:
            assert await store.read_many([]) == []
            with pytest.raises(UnavailableError):
                await store.read_many(["a"])
        finally:
            await client.aclose()

    asyncio.run(main())
