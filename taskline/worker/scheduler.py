"""The scheduler process: the clock of the line (`python -m taskline.worker.scheduler`).

Every tick it releases postponed tasks that are due, retried ones among them (they wait here,
in Redis, not as held or unacknowledged RabbitMQ messages), republishes turns whose publisher
never saw them confirmed (a crash between record and publish), has the worker kill the pool
child of a running task that ignored a cancel request past the grace period, settles runs whose
lease lapsed with no message left to run them again, forgets finished tasks past their
retention, and compares the line
with RabbitMQ's queue: turns missing there (a purged queue, a lost message) are published
again, the rest of the line after them too, so the order holds (on a quorum queue, where any
turn runs the line's head, only as many turns as are missing). All of it is state in Redis, so
a restart of this process loses nothing; the worker runs each turn once, however often it comes.
Beside the ticks, a thread delivers the webhooks of ended tasks (worker.webhooks).
"""

import json
import logging
import signal
import threading
import time
from typing import TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from taskline.core import redis_clients
from taskline.core.guard import exit_if_unsafe
from taskline.core.line_backfill import adopt_at_start
from taskline.core.line_queue import exit_if_mismatched
from taskline.core.lines import Line
from taskline.core.log_format import configure as configure_logging
from taskline.core.records import Keys, State, line_keys, now_ms
from taskline.core.replies import text_or_none, texts
from taskline.core.settings import Settings, get_settings, lines_of
from taskline.core.transitions import Call, Deleted, Recovered, Requeued, Transitions
from taskline.core.webhooks import heard
from taskline.worker.publisher import BrokerUnavailableError, Publisher
from taskline.worker.webhooks import run_in_thread as deliver_webhooks

log = logging.getLogger("taskline.scheduler")

T = TypeVar("T")

TICK_SECONDS = 0.1
# A turn still unconfirmed this long after its publish began is published again.
OUTBOX_GRACE_MS = 30_000
# A running task still there this long after its pool child was told to die is told again.
KILL_AGAIN_MS = 5_000
BATCH = 200
# A run silent this long is lost: its lease (10 s) has lapsed, and a redelivered message had
# time to claim it again (worker.hooks.claim polls every 0.5 s), which is the usual way back.
LOST_AFTER_MS = 30_000
# Most waiting tasks compared with the queue per reconciliation.
RECONCILE_BATCH = 1_000
# Most batches of tasks past their retention forgotten per line in a sweep (one a second):
# 2,000 a second, well above what a worker ends (673 trivial tasks a second measured), so the
# sweeps keep up, and a backlog (the scheduler was down) drains without holding up a tick.
FORGET_BATCHES = 10


class Scheduler:
    """One pass over the due work of every line per tick. Each line has its own sets and
    queue; `self.transitions` and `self.keys` are the main line's, and the methods that
    work on one line take it (by default the main line)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.keys = Keys(settings.key_prefix)
        self.redis = redis_clients.client(
            settings,
            decode_responses=True,
            socket_connect_timeout=settings.connect_timeout,
            socket_timeout=5.0,
            retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=3),
            retry_on_error=[redis.ConnectionError, redis.TimeoutError],
        )
        self.lines = lines_of(settings)
        self.line_keys = line_keys(settings.key_prefix, self.lines)
        waiting = {name: keys.line for name, keys in self.line_keys.items()}
        self.on = {
            name: Transitions(self.redis, keys, waiting) for name, keys in self.line_keys.items()
        }
        self.transitions = self.on[self.lines.main.name]
        self.publisher = Publisher(settings)
        self._last_sweep = self._last_reconcile = 0.0
        # Per line: waiting tasks whose turn seemed missing from its queue at the last
        # reconciliation.
        self._missing: dict[str, set[str]] = {line.name: set() for line in self.lines}

    def _line(self, line: Line | None) -> tuple[Line, Keys, Transitions]:
        line = line or self.lines.main
        return line, self.line_keys[line.name], self.on[line.name]

    def _due(self, key: str, until_ms: int) -> list[str]:
        return texts(self.redis.zrangebyscore(key, "-inf", until_ms, start=0, num=BATCH))

    def _each(self, transitions: Transitions, calls: list[Call[T]]) -> list[T]:
        """The outcomes of transitions of many tasks, run in order in one round trip."""
        if not calls:
            return []
        with self.redis.pipeline(transaction=False) as pipe:
            for call in calls:
                transitions.queue(pipe, call)
            replies = pipe.execute()
        return [call.parse(reply) for call, reply in zip(calls, replies, strict=True)]

    def _publish(self, turns: list[tuple[str, int]], line: Line | None = None) -> None:
        """Publish turns of waiting tasks to their line's queue, in order, and take them off
        the outbox once confirmed: their records read in one round trip, and the confirms
        (of those published, should RabbitMQ fail midway) taken off in another."""
        if not turns:
            return
        line, _, transitions = self._line(line)
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id, _ in turns:
                pipe.hmget(self.keys.task(task_id), "name", "params", "priority")
            records = pipe.execute()
        published: list[tuple[str, int]] = []
        try:
            for (task_id, turn), fields in zip(turns, records, strict=True):
                name, params, priority = map(text_or_none, fields)
                if name is not None and params is not None and priority is not None:
                    self.publisher.publish(
                        task_id, name, json.loads(params), int(priority), turn, line.queue
                    )
                published.append((task_id, turn))
        finally:
            if published:
                transitions.confirm(published)

    def release_due(self, line: Line | None = None) -> int:
        """Put postponed tasks whose time has come back in their line (postponed by a user,
        or waiting for the next attempt of a retried failure)."""
        line, keys, transitions = self._line(line)
        due = self._due(keys.scheduled, now_ms())
        turns = self._each(transitions, [transitions.calls.release(task_id) for task_id in due])
        released = [(task_id, turn) for task_id, turn in zip(due, turns, strict=True) if turn]
        self._publish(released, line)
        return len(released)

    def republish_unconfirmed(self, line: Line | None = None) -> None:
        """Publish again the turns whose publisher gave up or died before the confirm: the
        line is reissued once, from the first of them (the others are behind it)."""
        line, keys, transitions = self._line(line)
        due = self._due(keys.outbox, now_ms() - OUTBOX_GRACE_MS)
        if not due:
            return
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in due:
                pipe.hmget(self.keys.task(task_id), "state", "turn")
                pipe.zrank(keys.line, task_id)
            replies = pipe.execute()
        first: tuple[int, str] | None = None
        done: list[tuple[str, int]] = []
        waiting: list[str] = []
        for task_id, (state, turn), rank in zip(due, replies[::2], replies[1::2], strict=True):
            if state != State.QUEUED:
                # Taken off only if that turn is still the task's (or the task is gone).
                done.append((task_id, int(turn or 0)))
            elif self.quorum:
                waiting.append(task_id)  # any turn runs the head: the order needs no others
            elif rank is not None and (first is None or rank < first[0]):
                first = (rank, task_id)
        if done:
            transitions.confirm(done)
        self.reissue(waiting, line)
        if first is not None:
            self.reissue_from(first[1], line)

    @property
    def quorum(self) -> bool:
        """Whether the queues are quorum queues, whose turns each run their line's head."""
        return self.settings.queue_type == "quorum"

    def reissue(self, task_ids: list[str], line: Line | None = None) -> None:
        """New turns for waiting tasks of a line, published to the line's queue in order."""
        line, _, transitions = self._line(line)
        calls = [transitions.calls.reissue(task_id) for task_id in task_ids]
        turns = self._each(transitions, calls)
        self._publish([(t, turn) for t, turn in zip(task_ids, turns, strict=True) if turn], line)

    def reissue_from(self, task_id: str, line: Line | None = None) -> None:
        """New turns for a waiting task and every one behind it, published in line order.

        A turn published again lands at the back of RabbitMQ's queue, behind tasks that came
        later; new turns for the rest of the line keep the order (their older messages are
        dropped as superseded when they come).
        """
        line, keys, transitions = self._line(line)
        rank = self.redis.zrank(keys.line, task_id)
        if not isinstance(rank, int):  # None: no longer in line
            return
        self.reissue(texts(self.redis.zrange(keys.line, rank, rank + RECONCILE_BATCH - 1)), line)

    def _worker_alive(self, runner: str | None) -> bool:
        """Whether the worker of a run (its node name, before ":pid") still sends heartbeats."""
        node = (runner or "").rpartition(":")[0]
        seen = self.redis.zscore(self.keys.workers, node) if node else None
        return seen is not None and seen >= now_ms() - self.settings.worker_expiry_seconds * 1000

    def stop_ignored_cancels(self, line: Line | None = None) -> None:
        """Have the pool child of a task that ignored its cancel request killed.

        The worker records the task CANCELLED once the child is gone (worker.hooks.limits).
        A worker that sends no heartbeats any more cannot: once the run's lease has lapsed
        too, the run is over and recover_lost_runs records it.
        """
        _, keys, _ = self._line(line)
        for task_id in self._due(keys.cancelling, now_ms()):
            state, runner = map(
                text_or_none, self.redis.hmget(self.keys.task(task_id), "state", "runner")
            )
            if state != State.STARTED:
                self.redis.zrem(keys.cancelling, task_id)
                continue
            # xx: a run that ended meanwhile has left the set, and is not put back.
            self.redis.zadd(keys.cancelling, {task_id: now_ms() + KILL_AGAIN_MS}, xx=True)
            if self._worker_alive(runner):
                self.publisher.terminate(task_id)

    def recover_lost_runs(self) -> None:
        """Settle running tasks whose lease lapsed and that no message will run again.

        Celery acknowledges the message of a pool child lost after it stored SUCCESS, and a
        run asked to stop whose worker is gone is over: without this they would stay
        STARTED. Any other lost run goes back in line (a stalled run that wakes up finds
        its token stale and stops). Runs of every line, each settled on its record's line (a
        line no longer set up is left alone, with a warning).
        """
        running = [t for t, _ in self.redis.zscan_iter(self.keys.index(State.STARTED.value))]
        with self.redis.pipeline(transaction=False) as pipe:
            for task_id in running:
                pipe.exists(self.keys.lease(task_id))
            leases = pipe.execute()
        for task_id in (t for t, held in zip(running, leases, strict=True) if not held):
            runner, named = map(
                text_or_none, self.redis.hmget(self.keys.task(task_id), "runner", "line")
            )
            if (named or "") and named not in self.lines:
                log.warning("task %s runs on line %r, which is not set up", task_id, named)
                continue
            line = self.lines.named(named or "")
            forget_at = now_ms() + self.settings.retention_seconds * 1000
            alive = self._worker_alive(runner)
            outcome = self.on[line.name].recover(
                task_id,
                alive,
                forget_at,
                LOST_AFTER_MS,
                metrics=self.settings.metrics,
                heard=heard(self.settings.webhooks),
            )
            if isinstance(outcome, Requeued):
                log.warning(
                    "run %s of task %s was lost: back in line",
                    runner,
                    task_id,
                    extra={"task_id": task_id},
                )
                self._publish([(task_id, outcome.turn)], line)
            elif isinstance(outcome, Recovered):
                log.warning(
                    "run %s of task %s was lost: %s",
                    runner,
                    task_id,
                    outcome.state,
                    extra={"task_id": task_id},
                )

    def forget_expired(self, line: Line | None = None) -> None:
        """Delete finished tasks past their retention: record, result, events, indexes.

        A batch per round trip, up to FORGET_BATCHES: a busy line ends more tasks a second (a
        worker runs hundreds of trivial ones) than one batch holds, and what the sweeps left
        would pile up past its retention. A batch that forgets nothing ends the sweep.
        """
        _, keys, transitions = self._line(line)
        for _ in range(FORGET_BATCHES):
            due = self._due(keys.expiry, now_ms())
            outcomes = self._each(transitions, [transitions.calls.delete(t) for t in due])
            if len(due) < BATCH or not any(isinstance(o, Deleted) for o in outcomes):
                return

    def reconcile(self, line: Line | None = None) -> None:
        """Publish again the turns of waiting tasks that RabbitMQ's queue lacks.

        The queue holds at least one message for each waiting task (more for superseded
        turns), so fewer ready messages than waiting tasks outside the outbox means turns
        were lost. Which ones cannot be told from the count: a waiting task seen at two
        reconciliations in a row while the count fell short is taken as lost, and the line
        is reissued from the first such task on, in order. A duplicate turn is harmless
        (the worker runs a turn once). On a quorum queue any turn runs the line's head, so
        only as many turns as are missing are published again, none reissued for the order.
        Each line against its own queue, its missing turns counted on their own.
        """
        line, keys, _ = self._line(line)
        waiting = self.redis.zcard(keys.line)
        in_flight = self.redis.zcard(keys.outbox)
        missing = waiting - in_flight - (self.publisher.ready(line.queue) if waiting else 0)
        if missing <= 0:
            self._missing[line.name] = set()
            return
        queued = texts(self.redis.zrange(keys.line, 0, RECONCILE_BATCH - 1))
        outbox = set(texts(self.redis.zrange(keys.outbox, 0, -1))) if in_flight else set()
        suspects = [task_id for task_id in queued if task_id not in outbox]
        seen = self._missing[line.name]
        lost = [task_id for task_id in suspects if task_id in seen]  # in line order
        self._missing[line.name] = set(suspects)
        if lost and self.quorum:
            log.warning("%d turns missing from queue %s: published again", missing, line.queue)
            self.reissue(lost[:missing], line)
            self._missing[line.name] = set()
        elif lost:
            log.warning(
                "%d turns missing from queue %s: the line is reissued", len(lost), line.queue
            )
            self.reissue_from(lost[0], line)
            self._missing[line.name] = set()

    def tick(self) -> None:
        for line in self.lines:
            self.release_due(line)
            self.stop_ignored_cancels(line)
        if time.monotonic() - self._last_sweep >= 1.0:
            self._last_sweep = time.monotonic()
            for line in self.lines:
                self.republish_unconfirmed(line)
                self.forget_expired(line)
            self.recover_lost_runs()
        if time.monotonic() - self._last_reconcile >= self.settings.reconcile_seconds:
            self._last_reconcile = time.monotonic()
            for line in self.lines:
                self.reconcile(line)

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
    settings = get_settings()
    configure_logging("scheduler", settings.log_format)
    exit_if_unsafe(settings, "scheduler")
    exit_if_mismatched(settings, "scheduler")
    adopt_at_start(settings, "scheduler")
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    webhooks = deliver_webhooks(settings, stop)
    Scheduler(settings).run(stop)
    webhooks.join(timeout=10)


if __name__ == "__main__":
    main()
