"""The scheduler's settling of lost runs and ignored cancels, against the real Redis and RabbitMQ.

The test plays the worker (claims through core.transitions, Celery's stored result, worker
heartbeats) and calls one pass of the scheduler in the test process.
"""

import json
from collections.abc import Iterator

import pytest
from kombu import Consumer, Queue
from kombu.message import Message

from taskline.core.records import TURN_HEADER, Keys, State, now_ms
from taskline.core.replies import texts
from taskline.core.transitions import Claimed, Created, Transitions
from taskline.worker import scheduler as scheduler_module
from taskline.worker.scheduler import BATCH, LOST_AFTER_MS, OUTBOX_GRACE_MS, Scheduler
from tests.processes import isolated_env, settings_of
from tests.support import remove

pytestmark = pytest.mark.integration

NODE = "celery@test-host"


@pytest.fixture
def scheduler(request: pytest.FixtureRequest) -> Iterator[Scheduler]:
    """A scheduler of a queue of its own: classic, or of the type a test names (indirect)."""
    queue_type = getattr(request, "param", "classic")
    scheduler = Scheduler(settings_of(isolated_env(TASKLINE_QUEUE_TYPE=queue_type)))
    try:
        yield scheduler
    finally:
        scheduler.publisher.close()
        settings = scheduler.settings
        remove(settings.broker_url, settings.redis_url, [settings.queue], f"{settings.key_prefix}*")


def running(transitions: Transitions, task_id: str) -> Claimed:
    """A task created and claimed by a pool child of NODE."""
    created = transitions.create(
        task_id, "reverse", {"text": "x"}, 5, "alice", None, 100, None, 1000, None
    )
    assert isinstance(created, Created)
    claimed = transitions.claim(
        task_id,
        str(created.turn),
        False,
        "reverse",
        {},
        f"{NODE}:4242",
        10_000,
        False,
        forget_ms=now_ms() + 60_000,
    )
    assert isinstance(claimed, Claimed)
    return claimed


def state(scheduler: Scheduler, task_id: str) -> str:
    return scheduler.redis.hget(scheduler.keys.task(task_id), "state")


def lose(scheduler: Scheduler, task_id: str) -> None:
    """The run stopped renewing long ago: its lease lapsed, and no redelivery claimed it."""
    scheduler.redis.delete(scheduler.keys.lease(task_id))
    renewed = now_ms() - LOST_AFTER_MS - 1
    scheduler.redis.hset(scheduler.keys.task(task_id), "renewed_ms", renewed)


def turns_sent(scheduler: Scheduler, count: int) -> list[tuple[str, str]]:
    """The first `count` messages of the scheduler's queue, consumed: each task id and turn."""
    sent: list[tuple[str, str]] = []

    def received(_: object, message: Message) -> None:
        sent.append((message.headers["id"], message.headers[TURN_HEADER]))

    queue = Queue(scheduler.settings.queue, no_declare=True)
    with scheduler.publisher.app.connection_for_write() as connection:
        with Consumer(connection, [queue], accept=["json"], prefetch_count=count) as consumer:
            consumer.register_callback(received)
            while len(sent) < count:
                connection.drain_events(timeout=10)
    return sent


def heartbeat(scheduler: Scheduler, at_ms: int) -> None:
    scheduler.redis.zadd(scheduler.keys.workers, {NODE: at_ms})


def test_a_run_lost_after_celery_stored_its_success_ends_success(scheduler: Scheduler) -> None:
    """Celery stores SUCCESS, then calls the task's on_success: a pool child lost between the
    two has its message acknowledged (Celery sees the SUCCESS), so nothing would run again."""
    keys: Keys = scheduler.keys
    running(scheduler.transitions, "t1")
    meta = {"status": "SUCCESS", "result": "x", "task_id": "t1"}
    scheduler.redis.set(keys.meta("t1"), json.dumps(meta))
    scheduler.recover_lost_runs()
    assert state(scheduler, "t1") == "STARTED"  # its lease still runs: nothing lost yet

    scheduler.redis.delete(keys.lease("t1"))
    scheduler.recover_lost_runs()
    # Lapsed just now: a redelivered message gets the first chance to claim it again.
    assert state(scheduler, "t1") == "STARTED"

    lose(scheduler, "t1")
    scheduler.recover_lost_runs()
    assert state(scheduler, "t1") == "SUCCESS"
    assert scheduler.redis.zscore(keys.index("SUCCESS"), "t1") is not None


def test_a_lost_run_without_a_result_goes_back_in_line_with_a_new_turn(
    scheduler: Scheduler,
) -> None:
    keys = scheduler.keys
    running(scheduler.transitions, "t1")
    lose(scheduler, "t1")
    scheduler.recover_lost_runs()
    record = scheduler.redis.hgetall(keys.task("t1"))
    assert record["state"] == "QUEUED" and record["turn"] == "2" and record["runner"] == ""
    assert scheduler.redis.zrank(keys.line, "t1") == 0
    assert scheduler.publisher.ready() == 1  # its new turn is in RabbitMQ's queue
    assert scheduler.redis.zscore(keys.outbox, "t1") is None  # and confirmed


def test_an_ignored_cancel_is_recorded_only_once_the_run_is_over(scheduler: Scheduler) -> None:
    """A live worker kills the run and records it; a lapsed lease is no proof while the
    worker still beats (a hung child): only a worker gone quiet lets the scheduler end it."""
    keys = scheduler.keys
    running(scheduler.transitions, "t1")
    heartbeat(scheduler, now_ms())
    scheduler.transitions.cancel("t1", now_ms() - 1, now_ms() + 60_000)
    lose(scheduler, "t1")  # the pool child hangs: no renewals
    scheduler.stop_ignored_cancels()
    scheduler.recover_lost_runs()
    assert state(scheduler, "t1") == "STARTED"
    assert scheduler.redis.zscore(keys.cancelling, "t1") > now_ms()  # the kill is asked again

    heartbeat(scheduler, now_ms() - 60_000)  # the worker went quiet too
    scheduler.recover_lost_runs()
    assert state(scheduler, "t1") == State.CANCELLED
    assert scheduler.redis.zscore(keys.cancelling, "t1") is None


def past_retention(scheduler: Scheduler, count: int) -> list[str]:
    """`count` cancelled tasks whose retention is over (due in the expiry set)."""
    transitions = scheduler.transitions
    ids = [f"t{i}" for i in range(count)]
    with scheduler.redis.pipeline(transaction=False) as pipe:
        for task_id in ids:
            created = transitions.calls.create(
                task_id, "reverse", {"text": "x"}, 5, "alice", None, 10_000, None, 10_000, None
            )
            transitions.queue(pipe, created)
            transitions.queue(pipe, transitions.calls.cancel(task_id, 0, now_ms() - 1))
        pipe.execute()
    assert scheduler.redis.zcard(scheduler.keys.expiry) == count
    return ids


def test_every_task_past_its_retention_is_forgotten_in_one_sweep(scheduler: Scheduler) -> None:
    """A busy line ends more tasks a second than one batch holds (a worker runs hundreds of
    trivial tasks a second): a sweep forgets all that are due, or they would pile up past
    their retention."""
    keys = scheduler.keys
    ids = past_retention(scheduler, 2 * BATCH + 1)
    scheduler.forget_expired()
    assert scheduler.redis.zcard(keys.expiry) == 0
    assert scheduler.redis.exists(*(keys.task(task_id) for task_id in ids)) == 0


def test_a_backlog_past_retention_is_forgotten_over_several_sweeps(
    scheduler: Scheduler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sweep forgets at most FORGET_BATCHES batches, so a backlog (the scheduler was down)
    never holds up a tick for long; the next sweeps forget the rest."""
    monkeypatch.setattr(scheduler_module, "FORGET_BATCHES", 2)
    past_retention(scheduler, 2 * BATCH + 1)
    scheduler.forget_expired()
    assert scheduler.redis.zcard(scheduler.keys.expiry) == 1
    scheduler.forget_expired()
    assert scheduler.redis.zcard(scheduler.keys.expiry) == 0


@pytest.mark.parametrize("scheduler", ["classic", "quorum"], indirect=True)
def test_turns_never_confirmed_are_published_again_in_line_order(scheduler: Scheduler) -> None:
    """Tasks recorded by a publisher that died before RabbitMQ confirmed their turns: past the
    grace, the line is published again from the first of them (on a quorum queue each of
    them), each with a new turn, and a task that ended meanwhile just leaves the outbox."""
    transitions, keys = scheduler.transitions, scheduler.keys
    ids = ["t1", "t2", "t3", "ended"]
    for task_id in ids:
        created = transitions.create(
            task_id, "reverse", {"text": "x"}, 5, "alice", None, 100, None, 1000, None
        )
        assert isinstance(created, Created) and created.turn == 1
    transitions.cancel("ended", 0, now_ms() + 60_000)
    scheduler.redis.zadd(keys.outbox, {t: now_ms() - OUTBOX_GRACE_MS - 1 for t in ids})

    scheduler.republish_unconfirmed()
    assert scheduler.redis.zcard(keys.outbox) == 0
    assert scheduler.publisher.ready() == 3
    assert turns_sent(scheduler, 3) == [(task_id, "2") for task_id in ids[:3]]
    assert texts(scheduler.redis.zrange(keys.line, 0, -1)) == ids[:3]
