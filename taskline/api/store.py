"""Task records in Redis as the API sees them; every call is one round trip, errors are 503."""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import OutOfMemoryError, RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from taskline.api.errors import LineGoneError, UnavailableError
from taskline.api.reads import GatheredReads
from taskline.core import task_metrics
from taskline.core.lines import Lines, parse_lines
from taskline.core.records import Keys, Snapshot, line_keys, now_ms
from taskline.core.replies import Entry, entries, scored, text, texts
from taskline.core.transitions import AsyncTransitions

# Most workers GET /workers lists.
MOST_WORKERS = 1000
# How long confirmed turns gather before they are taken off the outbox together.
OUTBOX_BATCH_SECONDS = 0.005

T = TypeVar("T")


# Retry-After of a 503 for a full Redis: room comes back as tasks are deleted or forgotten.
FULL_RETRY_SECONDS = 30


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Turn an unreachable Redis, or one that refuses writes for want of memory (`maxmemory`
    with `noeviction`), into a 503. A refused script wrote nothing: Redis refuses only the
    first write of a script that may grow its memory, so a script runs whole or not at all."""
    try:
        yield
    except OutOfMemoryError as exc:
        raise UnavailableError(
            "Redis is out of memory and takes no new data; try again later, or delete tasks "
            "that have ended",
            headers={"Retry-After": str(FULL_RETRY_SECONDS)},
        ) from exc
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise UnavailableError("Redis is unavailable, try again shortly") from exc


@dataclass(frozen=True, slots=True)
class Sizes:
    """Each line's waiting and postponed tasks (by line name), and the live workers."""

    depth: dict[str, int]
    scheduled: dict[str, int]
    workers: int


@dataclass(frozen=True, slots=True)
class Search:
    """What a listing asks for (GET /tasks): any of `states`, any of `names`, an owner, a
    line, creation and end time ranges (ms: at or after, before; None unbounded), an id
    prefix, a searchable param's value."""

    states: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    owner: str | None = None
    line: str | None = None
    created: tuple[int | None, int | None] = (None, None)
    finished: tuple[int | None, int | None] = (None, None)
    id_prefix: str = ""
    # A searchable param's value: its index family part in each type that declares it
    # (core.searchable.part); the names then pick nothing more.
    params: tuple[str, ...] = ()


class TooBroadError(Exception):
    """An id prefix that more tasks start with than a search examines."""

    def __init__(self, most: int) -> None:
        super().__init__(most)
        self.most = most


def _within(at: float | None, bounds: tuple[int | None, int | None]) -> bool:
    """Whether an end time (ms, None: not ended) is in a range (at or after, before)."""
    after, before = bounds
    return at is not None and (after is None or at >= after) and (before is None or at < before)


class TaskStore:
    """Reads task records and changes them through the transition scripts, each on its
    task's line (`of(line)`); `transitions` are the main line's, and read every line."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        worker_expiry_ms: int = 10_000,
        lines: Lines | None = None,
        most_examined: int = 1000,
    ) -> None:
        self.redis = redis
        self.most_examined = most_examined  # ids one search call examines beside the indexes
        self.keys = keys
        self.worker_expiry_ms = worker_expiry_ms  # a worker silent this long is gone
        self.lines = lines or parse_lines("", "")
        self.line_keys = line_keys(keys.prefix, self.lines)
        waiting = {name: sets.line for name, sets in self.line_keys.items()}
        self._on = {
            name: AsyncTransitions(redis, sets, waiting) for name, sets in self.line_keys.items()
        }
        self.transitions = self._on[self.lines.main.name]
        self._reads = GatheredReads(self.transitions.read)
        self._confirmed: list[tuple[str, int, str]] = []
        self._flushes: set[asyncio.Task[None]] = set()

    def of(self, line: str) -> AsyncTransitions:
        """The transitions of a line ('' the main line: a record made before lines);
        UnavailableError for a line this deployment no longer sets up."""
        found = self._on.get(line or self.lines.main.name)
        if found is None:
            raise self._gone(line)
        return found

    def sets(self, line: str | None) -> Keys:
        """The keys of a line's sets (None or '': the main line's); UnavailableError for a
        line this deployment no longer sets up, as `of`."""
        found = self.line_keys.get(line or self.lines.main.name)
        if found is None:
            raise self._gone(line or "")
        return found

    def _gone(self, line: str) -> LineGoneError:
        return LineGoneError(
            f"line {line!r} is not one of TASKLINE_LINES ({', '.join(self.lines.names)}): "
            "its tasks cannot be changed, nor their start foreseen, until it is set up again"
        )

    async def change(self, transition: Awaitable[T]) -> T:
        """Run a transition (`store.change(store.transitions.cancel(...))`); 503 if unreachable."""
        with redis_errors():
            return await transition

    def published(self, task_id: str, turn: int, line: str = "") -> None:
        """RabbitMQ confirmed this turn: take it off the outbox, soon, if it is still current.

        Confirmed turns are taken off together, one command for all the requests of a few
        milliseconds. One that is never taken off (Redis went away) is published again by
        the scheduler after its grace time; the worker runs a turn once, whatever comes.
        """
        self._confirmed.append((task_id, turn, line))
        if len(self._confirmed) == 1:  # the first of a batch schedules its removal
            flush = asyncio.create_task(self._take_off_outbox())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def _take_off_outbox(self) -> None:
        await asyncio.sleep(OUTBOX_BATCH_SECONDS)
        confirmed, self._confirmed = self._confirmed, []
        for line in {line for _, _, line in confirmed}:  # each line's outbox
            turns = [(task_id, turn) for task_id, turn, of in confirmed if of == line]
            with contextlib.suppress(RedisError, OSError):
                await self._on[line or self.lines.main.name].confirm(turns)

    async def idempotent(self, owner: str, key: str) -> tuple[str, str] | None:
        """(task id, request digest) of the task this owner's key created, if any."""
        with redis_errors():
            found, digest = await self.redis.hmget(
                self.keys.idempotency(owner, key), "id", "digest"
            )
        return (text(found), text(digest)) if found else None

    async def read(self, task_id: str) -> Snapshot | None:
        """One task, or None if unknown; read with the others asked in the same turn of the
        event loop (taskline.api.reads)."""
        with redis_errors():
            return await self._reads.read(task_id)

    async def read_with_outbox(self, task_id: str) -> tuple[Snapshot | None, int | None]:
        """One task, and since when (ms) its turn waits in its line's outbox for a confirm."""
        snapshot = await self.read(task_id)
        if snapshot is None or snapshot.record.line not in ("", *self.lines.names):
            return snapshot, None
        with redis_errors():
            since = await self.redis.zscore(self.sets(snapshot.record.line).outbox, task_id)
        return snapshot, None if since is None else int(since)

    async def read_many(self, task_ids: list[str]) -> list[Snapshot]:
        """Several tasks in one round trip (none for no ids), in the given order; unknown ids
        are left out."""
        if not task_ids:
            return []
        with redis_errors():
            return await self.transitions.read(task_ids)

    async def page(
        self, search: Search, limit: int, cursor: int | None
    ) -> tuple[list[Snapshot], int | None]:
        """Newest first, the tasks a search finds through the indexes; returns the page and
        the next cursor (a creation sequence: the page's last, or the last examined).

        One index per state and name asked (none asked: every state, every name) of the
        family the owner and line pick, each read for its `limit + 1` newest below the
        cursor in one round trip, merged here: the scores are creation sequences, one per
        task, so the merge is newest first with no task twice. One index is the plain read
        of before. A creation time range bounds the sequences (`created`, the index of
        creation times, names the first and last task in it). An id prefix takes its
        candidates from `ids` (at most `most_examined`, else TooBroadError), and a finished time
        range is checked on `finished` for at most `most_examined` tasks of the indexes a
        call: a page may then come short, with a cursor to go on from.
        """
        keys = [
            self.keys.index(state, name, search.owner, search.line)
            for state in search.states or [""]
            for name in search.names or [""]
        ]
        if search.params:
            keys = [
                self.keys.index(state, owner=search.owner, param=param)
                for state in search.states or [""]
                for param in search.params
            ]
        with redis_errors():
            low, high = await self._created_bounds(search.created)
            if cursor is not None:
                high = cursor - 1 if high is None else min(high, cursor - 1)
            if low is not None and high is not None and low > high:
                return [], None
            if search.id_prefix:
                found, more, last = await self._by_prefix(keys, search, low, high, limit)
            elif search.finished != (None, None):
                found, more, last = await self._examined(keys, search, low, high, limit)
            else:
                found = await self._newest(keys, low, high, limit + 1)
                more, last = len(found) > limit, None
        found = found[:limit]
        snapshots = await self.read_many([task_id for task_id, _ in found])
        if more:
            return snapshots, int(found[-1][1]) if found else last
        return snapshots, last

    async def _newest(
        self, keys: list[str], low: int | None, high: int | None, count: int
    ) -> list[tuple[str, float]]:
        """The `count` newest of the indexes `keys` between two sequences (both included)."""
        top = "+inf" if high is None else high
        bottom = "-inf" if low is None else low
        if len(keys) == 1:
            replies = [
                await self.redis.zrevrangebyscore(
                    keys[0], top, bottom, start=0, num=count, withscores=True
                )
            ]
        else:
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.zrevrangebyscore(key, top, bottom, start=0, num=count, withscores=True)
                replies = await pipe.execute()
        found = [entry for reply in replies for entry in scored(reply)]
        if len(keys) > 1:
            found = sorted(dict(found).items(), key=lambda entry: entry[1], reverse=True)
        return found[:count]

    async def _created_bounds(
        self, created: tuple[int | None, int | None]
    ) -> tuple[int | None, int | None]:
        """The first and last creation sequence of a creation time range (ms, at or after,
        before); None where unbounded, (1, 0) when no task was created in it."""
        after, before = created
        if after is None and before is None:
            return None, None
        index = self.keys.search("created")
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zrangebyscore(index, "-inf" if after is None else after, "+inf", start=0, num=1)
            pipe.zrevrangebyscore(
                index, "+inf" if before is None else f"({before}", "-inf", start=0, num=1
            )
            first, last = await pipe.execute()
        if not first or not last:
            return 1, 0
        seqs = await self.redis.zmscore(self.keys.index(), [text(first[0]), text(last[0])])
        if seqs[0] is None or seqs[1] is None:
            return 1, 0
        return (
            None if after is None else int(seqs[0]),
            None if before is None else int(seqs[1]),
        )

    async def _by_prefix(
        self, keys: list[str], search: Search, low: int | None, high: int | None, limit: int
    ) -> tuple[list[tuple[str, float]], bool, int | None]:
        """The tasks whose id starts with the prefix, in the indexes `keys`, newest first."""
        prefix = search.id_prefix.encode()
        ids = texts(
            await self.redis.zrangebylex(
                self.keys.search("ids"),
                b"[" + prefix,
                b"[" + prefix + b"\xff",
                start=0,
                num=self.most_examined + 1,
            )
        )
        if len(ids) > self.most_examined:
            raise TooBroadError(self.most_examined)
        if not ids:
            return [], False, None
        async with self.redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.zmscore(key, ids)
            if search.finished != (None, None):
                pipe.zmscore(self.keys.search("finished"), ids)
            replies = await pipe.execute()
        ended = replies.pop() if search.finished != (None, None) else [0.0] * len(ids)
        seq: dict[str, float] = {}
        for reply in replies:
            for task_id, score in zip(ids, reply, strict=True):
                if score is not None:
                    seq[task_id] = score
        kept = [
            (task_id, seq[task_id])
            for task_id, at in zip(ids, ended, strict=True)
            if task_id in seq
            and (low is None or seq[task_id] >= low)
            and (high is None or seq[task_id] <= high)
            and (search.finished == (None, None) or _within(at, search.finished))
        ]
        kept.sort(key=lambda entry: entry[1], reverse=True)
        return kept, len(kept) > limit, None

    async def _examined(
        self, keys: list[str], search: Search, low: int | None, high: int | None, limit: int
    ) -> tuple[list[tuple[str, float]], bool, int | None]:
        """The newest tasks of the indexes `keys` that ended in the finished range, among at
        most `most_examined` of them: (found, more, the cursor after the last examined)."""
        examined = await self._newest(keys, low, high, self.most_examined)
        if not examined:
            return [], False, None
        ended = await self.redis.zmscore(
            self.keys.search("finished"), [task_id for task_id, _ in examined]
        )
        kept = [
            entry for entry, at in zip(examined, ended, strict=True) if _within(at, search.finished)
        ]
        if len(kept) > limit:
            return kept, True, None
        if len(examined) == self.most_examined:  # maybe more below: go on from the last
            return kept, False, int(examined[-1][1])
        return kept, False, None

    async def events_after(self, task_id: str, last_id: str) -> list[Entry]:
        """Events of a task after `last_id` ('0' for all)."""
        with redis_errors():
            return entries(await self.redis.xrange(self.keys.events(task_id), f"({last_id}", "+"))

    async def last_event_id(self, task_id: str) -> str:
        with redis_errors():
            last = entries(await self.redis.xrevrange(self.keys.events(task_id), count=1))
        return last[0][0] if last else "0"

    async def queue(self, limit: int, line: str = "") -> dict[str, Any]:
        """Depth of a line (the main line), its running task, the next ones and the workers
        seen lately (of every line: the caller keeps the line's)."""
        sets = self.sets(line)
        name = line or self.lines.main.name
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zcard(sets.line)
                pipe.zcard(sets.scheduled)
                pipe.zrange(self.keys.index("STARTED", line=name), 0, -1)
                pipe.zrange(sets.line, 0, limit - 1)
                pipe.zrangebyscore(self.keys.workers, now_ms() - self.worker_expiry_ms, "+inf")
                depth, scheduled, running, nxt, workers = await pipe.execute()
        return {
            "depth": depth,
            "scheduled": scheduled,
            "running": running,
            "next": nxt,
            "workers": workers,
        }

    async def ahead(
        self, line: str, task_id: str, priority: int, waiting: bool, most: int
    ) -> tuple[list[str], list[str], int]:
        """What runs before a task of a line, in one round trip: the running tasks, the first
        `most` waiting ahead of it, and how many wait ahead of it in all. `waiting`: it is in
        line (those before it are ahead); else it is postponed, and every waiting task of its
        priority or higher will be ahead when it joins the line (core/lua/task.lua's order)."""
        sets = self.sets(line)
        name = line or self.lines.main.name
        below = f"({(10 - priority) * 10**13}"  # line scores of priority >= `priority`
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zrange(self.keys.index("STARTED", line=name), 0, -1)
                if waiting:
                    pipe.zrank(sets.line, task_id)
                    pipe.zrange(sets.line, 0, most - 1)
                else:
                    pipe.zcount(sets.line, "-inf", below)
                    pipe.zrangebyscore(sets.line, "-inf", below, start=0, num=most)
                running, count, first = await pipe.execute()
        if count is None:  # left the line meanwhile
            count = 0
        ids = [i for i in texts(first)[: min(count, most)] if i != task_id]
        return texts(running), ids, int(count)

    async def runtimes(self, lists: list[str], samples: int) -> list[list[int]]:
        """The run times (ms) kept in each of these lists (core.estimates), one round trip."""
        if not lists:
            return []
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in lists:
                    pipe.lrange(key, 0, samples - 1)
                found = await pipe.execute()
        return [[int(v) for v in values] for values in found]

    async def workers(self) -> list[dict[str, Any]]:
        """The reports of the workers alive, as they wrote them. Two round trips: the index,
        then the reports (one whose key lapsed is gone, whatever the index still says)."""
        with redis_errors():
            nodes = texts(await self.redis.zrevrange(self.keys.workers, 0, MOST_WORKERS - 1))
            reports = await self.redis.mget([self.keys.worker(n) for n in nodes]) if nodes else []
        return [json.loads(report) for report in reports if report]

    async def counts(self, states: list[str]) -> tuple[dict[str, int], Sizes]:
        """Tasks per state, and the sizes of each line and its postponed set, and the number
        of workers."""
        sets = self.line_keys.values()
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for state in states:
                    pipe.zcard(self.keys.index(state))
                for keys in sets:
                    pipe.zcard(keys.line)
                    pipe.zcard(keys.scheduled)
                pipe.zcount(self.keys.workers, now_ms() - self.worker_expiry_ms, "+inf")
                replies = await pipe.execute()
        sizes, workers = replies[len(states) : -1], replies[-1]
        return dict(zip(states, replies, strict=False)), Sizes(
            depth=dict(zip(self.line_keys, sizes[::2], strict=True)),
            scheduled=dict(zip(self.line_keys, sizes[1::2], strict=True)),
            workers=workers,
        )

    async def ended(self) -> task_metrics.Ended:
        """The deployment's ended-task figures (core.task_metrics), as the workers count them."""
        with redis_errors():
            raw = await self.redis.hgetall(task_metrics.key(self.keys.prefix))
        return task_metrics.parse({text(k): text(v) for k, v in raw.items()})

    async def page_of_result(self, task_id: str, page: int) -> tuple[list[Any] | None, int]:
        """One page of a large result (or None) and the number of pages."""
        key = self.keys.pages(task_id)
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.lindex(key, page)
                pipe.llen(key)
                found, pages = await pipe.execute()
        return (json.loads(found) if found else None), pages

    async def history(self, task_id: str) -> list[dict[str, Any]]:
        with redis_errors():
            return [
                json.loads(e) for e in await self.redis.lrange(self.keys.history(task_id), 0, -1)
            ]

    async def ping(self) -> bool:
        """Whether Redis answers."""
        try:
            return bool(await self.redis.ping())
        except (RedisConnectionError, RedisTimeoutError, OSError):
            return False
