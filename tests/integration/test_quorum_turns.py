"""Turns of a quorum queue against the real scripts and a real quorum queue: the queue hands
out messages in the order they were sent, each is bound to the line's head as the worker's
consumer binds it (worker.consumer.bind), and the claim takes that task. The test plays the
worker: it gets each message, binds and claims it, ends the run, acks the message, and puts
back a turn the claim passed on; the API's and the scheduler's parts are the real
transitions and the real publisher.
"""

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
import redis
from kombu import Connection
from kombu.message import Message

from taskline.core.records import TURN_HEADER, Keys, State, iso, now_ms
from taskline.core.transitions import (
    Cancelled,
    Claimed,
    Created,
    Edited,
    Held,
    PassedOn,
    ResultWrites,
    Skipped,
    Transitions,
)
from taskline.worker.consumer import bind
from taskline.worker.publisher import Publisher
from tests.processes import isolated_env, settings_of
from tests.support import remove

pytestmark = pytest.mark.integration

LEASE_MS = 600_000
FOREVER = 2**42
RUNNER = "celery@test-host:4242"


@dataclass
class Line:
    """A line on a quorum queue of its own: its tasks and the turns RabbitMQ holds.

    The turns are consumed as the worker consumes them (a quorum queue with one active
    consumer refuses basic.get), into a buffer; each is bound when taken from it, as the
    worker binds a turn when it is delivered. Every turn published is counted until it is
    acked, so the test knows when none is left without waiting for one that never comes.
    """

    transitions: Transitions
    keys: Keys
    publisher: Publisher
    connection: Connection
    queue: str
    store: redis.Redis
    names: dict[str, int] = field(default_factory=dict)  # task id -> creation number
    buffer: list[Message] = field(default_factory=list)  # delivered, not yet taken
    in_hand: int = 0  # taken, neither acked nor given back
    published: int = 0
    acked: int = 0

    def __post_init__(self) -> None:
        channel = self.connection.default_channel
        queue = self.publisher.app.amqp.queues[self.queue](channel)
        queue.declare()
        self.consumer = self.connection.Consumer(
            [queue], callbacks=[lambda _, message: self.buffer.append(message)], accept=["json"]
        )
        self.consumer.qos(prefetch_count=0, apply_global=False)
        self.consumer.consume()

    def create(self, task_id: str, priority: int = 5, not_before: int | None = None) -> None:
        """POST /tasks: the record, then its turn published and confirmed."""
        moment = None if not_before is None else (iso_ms(not_before), not_before)
        created = self.transitions.create(
            task_id, "reverse", {"text": task_id}, priority, "alice", moment, 100, None, 1000, None
        )
        assert isinstance(created, Created)
        self.names[task_id] = len(self.names)
        if created.turn:
            self.publish(task_id, created.turn)

    def publish(self, task_id: str, turn: int) -> None:
        self.publisher.publish(task_id, "reverse", {"text": task_id}, 5, turn)
        self.transitions.confirm([(task_id, turn)])
        self.published += 1

    def next(self) -> Message | None:
        """The next turn delivered, bound to the line's head; None when no turn is left."""
        while not self.buffer:
            if self.published - self.acked - self.in_hand == 0:
                return None
            self.connection.drain_events(timeout=10)  # a bound for a failure, not a pause
        message = self.buffer.pop(0)
        self.in_hand += 1
        bind(message, self.transitions.head())
        task_id = message.headers["id"]
        assert json.loads(message.body)[1] == {"text": task_id}  # the params of the task bound
        return message

    def ack(self, message: Message) -> None:
        message.ack()
        self.in_hand -= 1
        self.acked += 1

    def give_back(self, message: Message) -> None:
        """As a passed-on turn (or one of a lost worker) goes back to the queue."""
        message.reject(requeue=True)
        self.in_hand -= 1

    def take(self) -> tuple[Message, str, Claimed | Held | Skipped | PassedOn] | None:
        """The next turn, bound and claimed, not acked; None when no turn is left."""
        message = self.next()
        if message is None:
            return None
        return message, message.headers["id"], self.claim(message)

    def claim(self, message: Message) -> Claimed | Held | Skipped | PassedOn:
        """The worker's claim of a bound turn."""
        return self.transitions.claim(
            message.headers["id"],
            message.headers[TURN_HEADER],
            bool(message.delivery_info.get("redelivered")),
            message.headers["task"],
            {},
            RUNNER,
            LEASE_MS,
            False,
            forget_ms=FOREVER,
            quorum=True,
        )

    def deliver(self) -> tuple[Message, str, Claimed | Held | Skipped | PassedOn] | None:
        """take(), then as the worker does: a run ends and its turn is acked; a turn passed
        on goes back to the queue; a held one is kept."""
        taken = self.take()
        if taken is None:
            return None
        message, task_id, outcome = taken
        if isinstance(outcome, PassedOn):
            self.give_back(message)
        elif not isinstance(outcome, Held):
            if isinstance(outcome, Claimed):
                self.finish(task_id, outcome.token)
            self.ack(message)
        return taken

    def finish(self, task_id: str, token: int) -> None:
        assert self.transitions.finish(task_id, State.SUCCESS, None, FOREVER, token=token)

    def run_all(self) -> list[str]:
        """Deliver every turn left: the tasks run, in the order they ran."""
        ran = []
        while (delivered := self.deliver()) is not None:
            _, task_id, outcome = delivered
            if isinstance(outcome, Claimed):
                ran.append(task_id)
        return ran

    def left(self) -> int:
        """Turns published and not acked."""
        return self.published - self.acked

    def state(self, task_id: str) -> str:
        return self.transitions.read([task_id])[0].record.state.value


def iso_ms(ms: int) -> str:
    return iso(datetime.fromtimestamp(ms / 1000, UTC))


@pytest.fixture
def line() -> Iterator[Line]:
    settings = settings_of(isolated_env(TASKLINE_QUEUE_TYPE="quorum"))
    keys = Keys(settings.key_prefix)
    publisher = Publisher(settings)
    connection = Connection(settings.broker_url)
    store = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    try:
        yield Line(Transitions(store, keys), keys, publisher, connection, settings.queue, store)
    finally:
        connection.close()
        publisher.close()
        store.close()
        remove(settings.broker_url, settings.redis_url, [settings.queue], f"{settings.key_prefix}*")


def test_turns_sent_in_any_order_run_the_line_by_priority_then_submission(line: Line) -> None:
    """The queue hands the turns out as they were sent; the tasks run by priority, then
    submission, each once, and no turn is left over."""
    priorities = [0, 9, 5, 5, 3, 9, 0, 7, 5, 9, 1, 5]
    for number, priority in enumerate(priorities):
        line.create(f"t{number}", priority)
    expected = sorted(line.names, key=lambda t: (-priorities[line.names[t]], line.names[t]))
    assert line.run_all() == expected
    assert [line.state(t) for t in line.names] == ["SUCCESS"] * len(priorities)
    assert line.left() == 0


def test_a_turn_whose_task_is_cancelled_or_postponed_before_its_claim_is_passed_on(
    line: Line,
) -> None:
    """Between a turn's binding and its claim the task is cancelled (or postponed): the turn
    is passed on (back in the queue) and runs the next task; nothing is run twice, and a
    turn is left for every task still waiting."""
    for task_id in ("a", "b", "c", "d"):
        line.create(task_id)

    def bound_then(change: str) -> None:
        message = line.next()
        assert message is not None
        task_id = message.headers["id"]
        if change == "cancel":
            assert line.transitions.cancel(task_id, FOREVER, FOREVER) == Cancelled()
        else:
            moment = now_ms() + 3_600_000
            edited = line.transitions.edit(
                task_id, None, None, None, "set", (iso_ms(moment), moment), {}, None
            )
            assert edited == Edited(0)
        state = "CANCELLED" if change == "cancel" else "SCHEDULED"
        assert line.claim(message) == PassedOn(state)
        line.give_back(message)

    bound_then("cancel")  # a
    bound_then("postpone")  # b
    assert line.left() == 4  # every turn is still there, for the two tasks that wait
    assert line.run_all() == ["c", "d"]
    # the postponed task comes back: the scheduler releases it and publishes its turn
    turn = line.transitions.release("b")
    line.publish("b", turn)
    assert line.run_all() == ["b"]
    assert [line.state(t) for t in "abcd"] == ["CANCELLED", "SUCCESS", "SUCCESS", "SUCCESS"]
    assert line.left() == 0


def test_a_priority_raised_while_waiting_runs_first_and_its_extra_turn_comes_to_nothing(
    line: Line,
) -> None:
    for task_id in ("a", "b", "c"):
        line.create(task_id)
    edited = line.transitions.edit("c", None, None, 9, "keep", None, {}, None)
    assert isinstance(edited, Edited) and edited.turn
    line.publish("c", edited.turn)
    outcomes = []
    while (delivered := line.deliver()) is not None:
        outcomes.append((delivered[1], type(delivered[2]).__name__))
    # four turns for three tasks: the last one finds the line empty and is dropped
    assert outcomes == [("c", "Claimed"), ("a", "Claimed"), ("b", "Claimed"), ("c", "Skipped")]


def test_a_live_run_holds_a_turn_and_a_lost_one_runs_again_before_the_line(line: Line) -> None:
    """A turn delivered while a run holds its lease waits for it (another worker took over
    the queue); once that run is lost (its lease lapsed), the waiting turn runs its task
    again, before the line; the lost run's own turn, returned by RabbitMQ, runs the next."""
    line.create("a")
    line.create("b", priority=9)
    running = line.take()
    assert running is not None and running[1] == "b" and running[2] == Claimed(1, {"text": "b"})
    held = line.take()
    assert held is not None and held[1] == "b" and isinstance(held[2], Held)
    line.store.delete(line.keys.lease("b"))  # the run's worker died
    line.give_back(running[0])  # and RabbitMQ returned its unacknowledged turn
    rerun = line.claim(held[0])
    assert rerun == Claimed(2, {"text": "b"})
    line.finish("b", 2)
    line.ack(held[0])
    assert line.run_all() == ["a"]
    assert line.left() == 0


def test_a_lost_run_celery_stored_as_success_ends_so_and_its_turn_runs_the_next(
    line: Line,
) -> None:
    """A run died after Celery's result backend stored its SUCCESS on its own (as an older
    worker's did: a run of this release stores it with its finish), its message acked: the
    next turn bound to it records the SUCCESS instead of running it again, and is passed on."""
    line.create("a")
    line.create("b", priority=9)
    running = line.take()
    assert running is not None and running[1] == "b" and isinstance(running[2], Claimed)
    meta = {"status": "SUCCESS", "result": "b", "task_id": "b"}
    assert ResultWrites(line.store).store(line.keys.meta("b"), json.dumps(meta), 0)
    line.store.delete(line.keys.lease("b"))
    line.ack(running[0])
    passed = line.deliver()
    assert passed is not None and passed[1:] == ("b", PassedOn("SUCCESS"))
    assert line.run_all() == ["a"]
    record = line.transitions.read(["b"])[0].record
    assert (record.state, record.attempts) == (State.SUCCESS, 1)
    assert line.left() == 0
