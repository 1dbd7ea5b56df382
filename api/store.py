"""Task records in Redis as the API sees them; every call is one round trip, errors are 503."""

import asyncio
import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from api.errors import UnavailableError
from worker.records import Keys, dumps, now_iso, now_ms
from worker.transitions import Transitions

# How long an Idempotency-Key is remembered.
IDEMPOTENCY_SECONDS = 24 * 3600
# How long a worker counts as present after its last heartbeat.
WORKER_SEEN_MS = 10_000
# How long confirmed turns gather before they are taken off the outbox together.
OUTBOX_BATCH_SECONDS = 0.005

# ARGV[1] record key prefix, [2] Celery meta key prefix, [3] the line; then task ids.
# Returns, per id, {record as a flat list, meta or false, rank in line or false}: one command
# for what a pipeline of three per task would do, and cheaper to send and parse.
_READ = """
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  out[#out + 1] = {redis.call('HGETALL', ARGV[1] .. id), redis.call('GET', ARGV[2] .. id),
                   redis.call('ZRANK', ARGV[3], id)}
end
return out
"""


@contextlib.contextmanager
def redis_errors() -> Iterator[None]:
    """Turn an unreachable Redis into a 503."""
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
        raise UnavailableError("Redis is unavailable, try again shortly") from exc


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What Redis knows of one task: its record, Celery's state for it, its place in line."""

    record: dict[str, str]
    meta: dict[str, Any] | None
    position: int | None


class TaskStore:
    """Reads and changes task records through the transition scripts."""

    def __init__(self, redis: Redis, keys: Keys) -> None:
        self.redis = redis
        self.keys = keys
        self.scripts = Transitions.register(redis)
        self._read = redis.register_script(_READ)
        self._read_args = [keys.task(""), keys.meta(""), keys.line]
        self._confirmed: list[str] = []
        self._flushes: set[asyncio.Task[None]] = set()

    async def _script(self, name: str, task_id: str, *args: Any) -> Any:
        with redis_errors():
            return await getattr(self.scripts, name)(
                args=[self.keys.prefix, task_id, now_iso(), now_ms(), *args]
            )

    async def create(
        self,
        task_id: str,
        name: str,
        params: dict[str, Any],
        priority: int,
        owner: str,
        not_before: tuple[str, int] | None,
        max_waiting: int,
        idempotency: tuple[str, str] | None,
        per_minute: int,
    ) -> list[Any]:
        """Record a new task (and its place in line); see the `create` script's outcomes.

        A created task comes back as [state, turn, its Snapshot]; ['limited', seconds] means
        the owner created `per_minute` tasks this minute already, and may again in `seconds`.
        """
        nb_iso, nb_ms = not_before or ("", 0)
        key, digest = idempotency or ("", "")
        now = now_ms()
        window = now // 60_000
        outcome = await self._script(
            "create",
            task_id,
            name,
            dumps(params),
            priority,
            owner,
            nb_iso,
            nb_ms,
            max_waiting,
            key and self._idempotency_key(owner, key),
            digest,
            IDEMPOTENCY_SECONDS,
            f"{self.keys.prefix}rate:{owner}:{window}",
            per_minute,
        )
        if outcome[0] == "limited":
            return ["limited", 60 - (now // 1000) % 60]
        if outcome[0] in ("full", "existing"):
            return outcome
        state, turn, flat, rank = outcome
        record = dict(zip(flat[::2], flat[1::2], strict=True))
        return [state, turn, Snapshot(record, None, None if rank is None else rank + 1)]

    def _idempotency_key(self, owner: str, key: str) -> str:
        return f"{self.keys.prefix}idempotency:{owner}:{key}"

    async def idempotent(self, owner: str, key: str) -> list[str] | None:
        """[task id, request digest] of the task this owner's key created, if any."""
        with redis_errors():
            seen = await self.redis.hmget(self._idempotency_key(owner, key), "id", "digest")
        return seen if seen[0] else None

    def published(self, task_id: str) -> None:
        """The message of the current turn is confirmed: take it off the outbox, soon.

        Confirmed ids are taken off together, one command for all the requests of a few
        milliseconds. One that is never taken off (Redis went away) is published again by
        the scheduler after its grace time; the worker runs a turn once, whatever comes.
        """
        self._confirmed.append(task_id)
        if len(self._confirmed) == 1:  # the first of a batch schedules its removal
            flush = asyncio.create_task(self._take_off_outbox())
            self._flushes.add(flush)
            flush.add_done_callback(self._flushes.discard)

    async def _take_off_outbox(self) -> None:
        await asyncio.sleep(OUTBOX_BATCH_SECONDS)
        confirmed, self._confirmed = self._confirmed, []
        with contextlib.suppress(RedisError, OSError):
            await self.redis.zrem(self.keys.outbox, *confirmed)

    async def delete(self, task_id: str, force: bool = False) -> str | None:
        """Forget a task unless it runs (or even then, with force); returns its state."""
        return await self._script("delete", task_id, "1" if force else "")

    async def cancel(self, task_id: str, grace_seconds: float, retention: int) -> list[str]:
        """Cancel a waiting task, or ask a running one to stop; see the `cancel` script."""
        now = now_ms()
        return await self._script(
            "cancel", task_id, now + int(grace_seconds * 1000), now + retention * 1000
        )

    async def edit(
        self,
        task_id: str,
        version: str,
        params: dict[str, Any] | None,
        priority: int | None,
        not_before: str,
        not_before_value: tuple[str, int] | None,
        change: dict[str, Any],
    ) -> list[Any]:
        """Change a waiting task; see the `edit` script for the outcomes."""
        nb_iso, nb_ms = not_before_value or ("", 0)
        return await self._script(
            "edit",
            task_id,
            version,
            dumps(params),
            "" if priority is None else priority,
            not_before,
            nb_iso,
            nb_ms,
            dumps(change),
        )

    async def read(self, task_id: str) -> Snapshot | None:
        """One task, or None if unknown."""
        found = await self.read_many([task_id])
        return found[0] if found else None

    async def read_many(self, task_ids: list[str]) -> list[Snapshot]:
        """Several tasks in one round trip, in the given order; unknown ids are left out."""
        with redis_errors():
            replies = await self._read(args=[*self._read_args, *task_ids])
        return [
            Snapshot(
                dict(zip(flat[::2], flat[1::2], strict=True)),
                json.loads(meta) if meta else None,
                None if rank is None else rank + 1,
            )
            for flat, meta, rank in replies
            if flat
        ]

    async def page(
        self,
        state: str | None,
        name: str | None,
        owner: str | None,
        limit: int,
        cursor: int | None,
    ) -> tuple[list[Snapshot], int | None]:
        """Newest first from the matching index; returns the page and the next cursor."""
        top = f"({cursor}" if cursor is not None else "+inf"
        with redis_errors():
            entries = await self.redis.zrevrangebyscore(
                self.keys.index(state, name, owner),
                top,
                "-inf",
                start=0,
                num=limit + 1,
                withscores=True,
            )
        more = len(entries) > limit
        entries = entries[:limit]
        snapshots = await self.read_many([task_id for task_id, _ in entries]) if entries else []
        return snapshots, int(entries[-1][1]) if more else None

    async def events_after(self, task_id: str, last_id: str) -> list[tuple[str, dict]]:
        """Events of a task after `last_id` ('0' for all)."""
        with redis_errors():
            return await self.redis.xrange(self.keys.events(task_id), f"({last_id}", "+")

    async def last_event_id(self, task_id: str) -> str:
        with redis_errors():
            last = await self.redis.xrevrange(self.keys.events(task_id), count=1)
        return last[0][0] if last else "0"

    async def queue(self, limit: int) -> dict[str, Any]:
        """Depth of the line, the running task, the next ones and the workers seen lately."""
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.zcard(self.keys.line)
                pipe.zcard(self.keys.scheduled)
                pipe.zrange(self.keys.index("STARTED"), 0, -1)
                pipe.zrange(self.keys.line, 0, limit - 1)
                pipe.zrangebyscore(self.keys.workers, now_ms() - WORKER_SEEN_MS, "+inf")
                depth, scheduled, running, nxt, workers = await pipe.execute()
        return {
            "depth": depth,
            "scheduled": scheduled,
            "running": running,
            "next": nxt,
            "workers": workers,
        }

    async def counts(self, states: list[str]) -> tuple[dict[str, int], dict[str, int]]:
        """Tasks per state, and the sizes of the line, the postponed set and the workers."""
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                for state in states:
                    pipe.zcard(self.keys.index(state))
                pipe.zcard(self.keys.line)
                pipe.zcard(self.keys.scheduled)
                pipe.zcount(self.keys.workers, now_ms() - WORKER_SEEN_MS, "+inf")
                replies = await pipe.execute()
        depth, scheduled, workers = replies[len(states) :]
        return dict(zip(states, replies, strict=False)), {
            "depth": depth,
            "scheduled": scheduled,
            "workers": workers,
        }

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
