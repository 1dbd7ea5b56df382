"""The scheduler process: the clock of the line (`python -m worker.scheduler`).

Every tick it releases postponed tasks that are due (they wait here, in Redis, not as held or
unacknowledged RabbitMQ messages), republishes messages whose publisher never confirmed them
(a crash between record and publish), stops running tasks that ignored a cancel request after
the grace period, and forgets finished tasks past their retention. All of it is state in Redis,
so a restart of this process loses nothing.
"""

import json
import logging
import signal
import threading
import time
from typing import Any

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from worker.publisher import BrokerUnavailableError, Publisher
from worker.records import Keys, State, dumps, now_iso, now_ms
from worker.settings import Settings, get_settings
from worker.transitions import Transitions

log = logging.getLogger("taskline.scheduler")

TICK_SECONDS = 0.1
# A message still unconfirmed this long after its publish began is published again.
OUTBOX_GRACE_MS = 30_000
BATCH = 200


class Scheduler:
    """One pass over the due work per tick."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.redis = redis.Redis.from_url(
            settings.redis_url,
            decode_responses=True,
            socket_connect_timeout=settings.connect_timeout,
            socket_timeout=5.0,
            retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=3),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        self.scripts = Transitions.register(self.redis)
        self.publisher = Publisher(settings)
        self._last_sweep = 0.0

    def _script(self, name: str, task_id: str, *args: Any) -> Any:
        return getattr(self.scripts, name)(
            args=[self.settings.key_prefix, task_id, now_iso(), now_ms(), *args]
        )

    def _due(self, key: str, until_ms: int) -> list[str]:
        return self.redis.zrangebyscore(key, "-inf", until_ms, start=0, num=BATCH)

    def _publish(self, task_id: str, turn: int) -> None:
        name, params, priority = self.redis.hmget(
            self.keys.task(task_id), "name", "params", "priority"
        )
        if name is None:
            self.redis.zrem(self.keys.outbox, task_id)
            return
        self.publisher.publish(task_id, name, json.loads(params), int(priority), turn)
        self.redis.zrem(self.keys.outbox, task_id)

    def release_due(self) -> int:
        """Put postponed tasks whose time has come back in line."""
        released = 0
        for task_id in self._due(self.keys.scheduled, now_ms()):
            turn = self._script("release", task_id)
            if turn:
                self._publish(task_id, turn)
                released += 1
        return released

    def republish_unconfirmed(self) -> None:
        """Publish again the turns whose publisher gave up or died before the confirm."""
        for task_id in self._due(self.keys.outbox, now_ms() - OUTBOX_GRACE_MS):
            state, turn = self.redis.hmget(self.keys.task(task_id), "state", "turn")
            if state != State.QUEUED:
                self.redis.zrem(self.keys.outbox, task_id)
                continue
            self.redis.zadd(self.keys.outbox, {task_id: now_ms()})
            self._publish(task_id, int(turn))

    def stop_ignored_cancels(self) -> None:
        """Kill the pool child of a task that ignored its cancel request past the grace period."""
        for task_id in self._due(self.keys.cancelling, now_ms()):
            self.publisher.terminate(task_id)
            error = {"type": "Cancelled", "message": "stopped after the cancel grace period"}
            forget_at = now_ms() + self.settings.retention_seconds * 1000
            self._script("finish", task_id, "", State.CANCELLED.value, dumps(error), forget_at)
            self.redis.zrem(self.keys.cancelling, task_id)

    def forget_expired(self) -> None:
        """Delete finished tasks past their retention: record, result, events, indexes."""
        for task_id in self._due(self.keys.expiry, now_ms()):
            self._script("delete", task_id, "1")

    def tick(self) -> None:
        self.release_due()
        self.stop_ignored_cancels()
        if time.monotonic() - self._last_sweep >= 1.0:
            self._last_sweep = time.monotonic()
            self.republish_unconfirmed()
            self.forget_expired()

    def run(self, stop: threading.Event) -> None:
        """Tick until stopped; an unreachable RabbitMQ or Redis is waited out, not fatal."""
        log.info("scheduler started (prefix %s)", self.settings.key_prefix)
        while not stop.is_set():
            try:
                self.tick()
            except (redis.RedisError, BrokerUnavailableError) as exc:
                log.warning("scheduler tick failed, retrying: %s", exc)
                stop.wait(1.0)
            stop.wait(TICK_SECONDS)
        self.publisher.close()


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    Scheduler(get_settings()).run(stop)


if __name__ == "__main__":
    main()
