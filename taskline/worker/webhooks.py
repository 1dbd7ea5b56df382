"""The webhook deliverer: POSTs each ended task to its callback_url and to the global webhooks
of its state, signed (core.webhooks), from a durable outbox in Redis. It runs in the
scheduler's process, on its own thread and event loop, off the worker's path.

Why an outbox the finishing scripts fill, rather than a consumer group on the stream of
changes (`line-events`): that stream is trimmed to about 10,000 changes, progress among them,
so a deliverer down for a while would find the ends it missed trimmed away. Every script that
ends a task adds it to `webhooks` in the same script (core/lua/task.lua), so no end is missed
whether this process runs or not (an end no URL hears of, told by core.webhooks.heard, is
not added); that set holds one member per such ended task still kept (the retention bounds
it). Here each end is planned into deliveries (`webhook-deliveries`, one per
URL, at most TASKLINE_WEBHOOK_OUTBOX_MAX; the ends wait for room; indexed by task too, so
that deleting a task takes its deliveries with it), and each delivery stays
there, rescheduled with exponential backoff, until its URL answers 2xx or
TASKLINE_WEBHOOK_RETRY_SECONDS have passed since the end: a restart loses nothing. Delivery
is at least once (a crash between a call and its recording repeats it): receivers keep the
task id. Every attempt is in the task's history.
"""

import asyncio
import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx
import redis
import redis.asyncio

from taskline.api.schemas import task_out
from taskline.core import redis_clients
from taskline.core.records import Keys, Snapshot, dumps, line_keys, now_iso, now_ms
from taskline.core.replies import texts
from taskline.core.settings import Settings, lines_of
from taskline.core.transitions import AsyncTransitions
from taskline.core.webhooks import SIGNATURE_HEADER, allowed, hooks_of, hosts_of, signature, targets

log = logging.getLogger("taskline.webhooks")

BATCH = 100
PASS_SECONDS = 0.2
# The backoff doubles from this after each failed attempt, up to the cap.
FIRST_DELAY_MS = 1_000
MAX_DELAY_MS = 600_000
HISTORY_MAX = 100  # as core/lua/task.lua keeps


@dataclass(frozen=True, slots=True)
class Delivery:
    """One URL to tell of one task's end: the attempt to make next, and when the task ended."""

    task_id: str
    url: str
    attempt: int
    ended_ms: int

    @property
    def member(self) -> str:
        return json.dumps(
            {"id": self.task_id, "url": self.url, "attempt": self.attempt, "ended": self.ended_ms}
        )

    @property
    def indexed(self) -> str:
        """Its entry in the deliveries by task (core/lua/delete.lua takes a task's own)."""
        return f"{self.task_id} {self.member}"

    @classmethod
    def parse(cls, member: str) -> "Delivery":
        found = json.loads(member)
        return cls(found["id"], found["url"], int(found["attempt"]), int(found["ended"]))


def backoff_ms(attempt: int) -> int:
    """How long after failed attempt `attempt` (1, 2, …) the next one is due."""
    return int(min(MAX_DELAY_MS, FIRST_DELAY_MS * 2 ** min(attempt - 1, 30)))


class Deliverer:
    """Plans the ended tasks' deliveries and makes the due ones, a pass at a time."""

    def __init__(self, settings: Settings, client: redis.asyncio.Redis) -> None:
        self.settings = settings
        self.redis = client
        self.keys = Keys(settings.key_prefix)
        lines = line_keys(settings.key_prefix, lines_of(settings))
        waiting = {name: keys.line for name, keys in lines.items()}
        self.reads = AsyncTransitions(client, self.keys, waiting)
        self.hooks = hooks_of(settings.webhooks)
        self.hosts = hosts_of(settings.webhook_hosts)
        self.secret = settings.webhook_secret.get_secret_value().encode()
        # An attempt's whole bound: the read timeout is per read, so a receiver that sends a
        # byte now and then would otherwise hold the pass, and every other delivery, forever.
        self.deadline = settings.webhook_connect_timeout + settings.webhook_read_timeout
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(
                settings.webhook_read_timeout, connect=settings.webhook_connect_timeout
            ),
            follow_redirects=False,
        )

    async def close(self) -> None:
        await self.http.aclose()

    async def _snapshots(self, task_ids: list[str]) -> dict[str, Snapshot]:
        if not task_ids:
            return {}
        found = await self.reads.run(self.reads.calls.read(task_ids))
        return {snapshot.record.id: snapshot for snapshot in found}

    async def plan(self) -> int:
        """Turn ended tasks into deliveries, as many as there is room for; those without any
        URL just leave. Returns how many ended tasks were taken."""
        room = self.settings.webhook_outbox_max - await self.redis.zcard(
            self.keys.webhook_deliveries
        )
        if room <= 0:
            return 0
        found = await self.redis.zrange(
            self.keys.webhooks, 0, min(BATCH, room) - 1, withscores=True
        )
        ended: list[tuple[str, float]] = [(str(pair[0]), float(pair[1])) for pair in found]
        if not ended:
            return 0
        async with self.redis.pipeline(transaction=True) as pipe:
            # a task deleted between the read and the write would leave deliveries behind:
            # watched, its deletion cancels the write, and the next pass plans afresh
            await pipe.watch(*(self.keys.task(task_id) for task_id, _ in ended))
            snapshots = await self._snapshots([task_id for task_id, _ in ended])
            planned: list[Delivery] = []
            taken: list[str] = []
            for task_id, ended_ms in ended:
                snapshot = snapshots.get(task_id)
                urls = []
                if snapshot:
                    record = snapshot.record
                    urls = targets(record.state, record.callback_url, self.hooks)
                if len(planned) + len(urls) > room and taken:
                    break  # the rest wait for room
                taken.append(task_id)
                planned += [Delivery(task_id, url, 1, int(ended_ms)) for url in urls]
            pipe.multi()  # type: ignore[no-untyped-call]
            self._add(pipe, planned, now_ms())
            pipe.zrem(self.keys.webhooks, *taken)
            try:
                await pipe.execute()
            except redis.WatchError:
                return 0
        return len(taken)

    def _add(self, pipe: Any, deliveries: list[Delivery], due_ms: int) -> None:
        """Queue the deliveries, due then, in both sets (by due time, and by task)."""
        if deliveries:
            pipe.zadd(self.keys.webhook_deliveries, {d.member: due_ms for d in deliveries})
            pipe.zadd(self.keys.webhook_deliveries_by_task, {d.indexed: 0 for d in deliveries})

    def _remove(self, pipe: Any, delivery: Delivery) -> None:
        pipe.zrem(self.keys.webhook_deliveries, delivery.member)
        pipe.zrem(self.keys.webhook_deliveries_by_task, delivery.indexed)

    async def deliver_due(self) -> int:
        """Make the deliveries that are due, side by side; returns how many."""
        due = texts(
            await self.redis.zrangebyscore(
                self.keys.webhook_deliveries, "-inf", now_ms(), start=0, num=BATCH
            )
        )
        if not due:
            return 0
        deliveries = [Delivery.parse(member) for member in due]
        snapshots = await self._snapshots(sorted({d.task_id for d in deliveries}))
        await asyncio.gather(*(self._deliver(d, snapshots.get(d.task_id)) for d in deliveries))
        return len(deliveries)

    async def _deliver(self, delivery: Delivery, snapshot: Snapshot | None) -> None:
        if snapshot is None:  # deleted or forgotten meanwhile: nobody to tell of
            async with self.redis.pipeline(transaction=True) as pipe:
                self._remove(pipe, delivery)
                await pipe.execute()
            return
        outcome: dict[str, Any] = {"url": delivery.url, "attempt": delivery.attempt}
        if not self._may_call(delivery.url):
            outcome["error"] = "its host is no longer on TASKLINE_WEBHOOK_HOSTS"
            outcome["gave_up"] = True
            await self._record(delivery, outcome, None, now_ms())
            return
        body = task_out(snapshot).model_dump_json().encode()
        try:
            async with asyncio.timeout(self.deadline):
                status = await self._post(delivery.url, body)
            outcome["status"] = status
            delivered = 200 <= status < 300
        except httpx.HTTPError as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"[:200]
            delivered = False
        except TimeoutError:
            outcome["error"] = f"TimeoutError: no whole answer within {self.deadline:g} s"
            delivered = False
        follow: Delivery | None = None
        due_ms = now_ms() + backoff_ms(delivery.attempt)
        if delivered:
            outcome["delivered"] = True
        elif due_ms - delivery.ended_ms > self.settings.webhook_retry_seconds * 1000:
            outcome["gave_up"] = True
            log.warning("webhook %s of task %s given up", delivery.url, delivery.task_id)
        else:
            follow = Delivery(
                delivery.task_id, delivery.url, delivery.attempt + 1, delivery.ended_ms
            )
        await self._record(delivery, outcome, follow, due_ms)

    def _may_call(self, url: str) -> bool:
        """A global webhook, or a callback whose host is on the allow-list as it stands now:
        a host taken off it is called no more, as a retry or clone would refuse it."""
        return any(hook.url == url for hook in self.hooks) or allowed(url, self.hosts)

    async def _post(self, url: str, body: bytes) -> int:
        """POST the body signed; the answer's status, having read at most the bounded bytes."""
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature(self.secret, int(time.time()), body),
            "User-Agent": "Taskline-Webhook",
        }
        async with self.http.stream("POST", url, content=body, headers=headers) as answer:
            read = 0
            async for chunk in answer.aiter_raw():
                read += len(chunk)
                if read >= self.settings.webhook_response_bytes:
                    break
            return answer.status_code

    async def _record(
        self, delivery: Delivery, outcome: dict[str, Any], follow: Delivery | None, due_ms: int
    ) -> None:
        """The attempt in the task's history, and the delivery taken off or rescheduled, at
        once; nothing is written into the history of a task that is no more."""
        record = self.keys.task(delivery.task_id)
        history = self.keys.history(delivery.task_id)
        change = dumps({"at": now_iso(), "change": "webhook", **outcome})
        async with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    await pipe.watch(record)
                    exists = await pipe.exists(record)
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if exists:
                        pipe.rpush(history, change)
                        pipe.ltrim(history, -HISTORY_MAX, -1)
                    self._remove(pipe, delivery)
                    if follow is not None and exists:
                        self._add(pipe, [follow], due_ms)
                    await pipe.execute()
                    return
                except redis.WatchError:
                    continue

    async def run(self, stop: threading.Event) -> None:
        """Plan and deliver until stopped; an unreachable Redis is waited out."""
        try:
            while not stop.is_set():
                try:
                    busy = await self.plan() + await self.deliver_due()
                except redis.RedisError as exc:
                    log.warning("webhook pass failed, retrying: %s", exc)
                    busy = 0
                    await asyncio.sleep(1.0)
                if not busy:
                    await asyncio.sleep(PASS_SECONDS)
        finally:
            await self.close()


def run_in_thread(settings: Settings, stop: threading.Event) -> threading.Thread:
    """Start the deliverer on a thread of its own, with its own event loop and Redis client."""

    async def main() -> None:
        client = redis_clients.async_client(
            settings,
            max_connections=BATCH + 4,
            timeout=settings.connect_timeout,
            decode_responses=True,
            socket_connect_timeout=settings.connect_timeout,
            socket_timeout=5.0,
        )
        try:
            await Deliverer(settings, client).run(stop)
        finally:
            await client.aclose()

    thread = threading.Thread(target=asyncio.run, args=(main(),), name="webhooks", daemon=True)
    thread.start()
    return thread
