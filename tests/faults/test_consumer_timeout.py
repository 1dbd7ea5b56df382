"""A task that outlives RabbitMQ's consumer_timeout must still run exactly once.

RabbitMQ closes the channel of a consumer that holds an unacknowledged message longer than
consumer_timeout and requeues the message. The deployment raises the timeout above the
longest task (deploy/rabbitmq.conf, scripts/ensure-services.sh); these tests use a private
node with a 5 s timeout to see what happens when a broker was not configured so, or when a
task type declares a hard limit above it: by design the stack starts all the same.
"""

import os
import signal
from collections.abc import Callable, Iterator
from datetime import datetime

import pytest

from taskline.core.registry import limits, tasks_of
from tests.client import TERMINAL, read, submit, wait_done, wait_state
from tests.faults.conftest import RabbitNode, ran_once_to_success, received, tail
from tests.processes import Stack, start, worker_command
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

CONSUMER_TIMEOUT_MS = 5000
# RabbitMQ checks the timeout on its channel tick (every 60 s by default): tick every second
# so that a task of a few seconds more than the timeout certainly crosses it.
BROKER_ARGS = (
    f"-rabbit consumer_timeout {CONSUMER_TIMEOUT_MS}",
    "-rabbit channel_tick_interval 1000",
)


@pytest.fixture(scope="module")
def short_timeout_broker() -> Iterator[RabbitNode]:
    """One private node with a 5 s consumer_timeout for this module's tests."""
    node = RabbitNode(*BROKER_ARGS)
    try:
        node.start()
        yield node
    finally:
        node.close()


def moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def worker_gone_or_done(stack: Stack, api_get: Callable[[], dict]) -> bool:
    """Whether the worker process has exited, or the given task has ended."""
    return stack.procs["worker"].poll() is not None or api_get()["state"] in TERMINAL


@pytest.mark.timeout(120)
def test_task_longer_than_consumer_timeout_runs_once_and_worker_carries_on(
    short_timeout_broker: RabbitNode, make_stack: Callable[..., Stack]
) -> None:
    """A 12 s task, a 5 s consumer_timeout: one run, SUCCESS, and the next task runs.

    The stack starts although the task type's hard limit is far above the timeout. The worker
    reconnects (broker_channel_error_retry) and lets the run go on; the requeued message comes
    back to it, once per timeout, and each copy is dropped without running.
    """
    stack = make_stack(TASKLINE_BROKER_URL=short_timeout_broker.url)
    hard_limit = limits(tasks_of(stack.settings)["reverse"])[1]
    assert hard_limit * 1000 > CONSUMER_TIMEOUT_MS
    stack.start()
    with stack.client() as api:
        task = submit(api, "reverse", {"text": "long"}, delay_seconds=12)
        nxt = submit(api, "reverse", {"text": "next"})
        wait_state(api, task["id"], {"STARTED", "PROGRESS"}, timeout=30)
        done = wait_done(api, task["id"], timeout=60)
        assert done["state"] == "SUCCESS", (done, tail(stack.logs / "worker.log"))
        assert done["result"] == "gnol"
        ran_once_to_success(stack, api, task["id"], attempts=1)
        ran = moment(done["finished_at"]) - moment(done["started_at"])
        assert ran.total_seconds() * 1000 > 2 * CONSUMER_TIMEOUT_MS  # the run outlasted it

        wait_until(
            lambda: worker_gone_or_done(stack, lambda: api.get(f"/tasks/{nxt['id']}").json()),
            30,
            interval=0.1,
        )
        assert stack.procs["worker"].poll() is None, tail(stack.logs / "worker.log")
        assert wait_done(api, nxt["id"], timeout=10)["result"] == "txen"
        assert received(stack, task["id"]) >= 2, tail(stack.logs / "worker.log")
        log = (stack.logs / "worker.log").read_text(errors="replace")
        assert log.count(f"[{task['id']}] succeeded") == 1
        # The copy still held when the run ended was dropped before the next task came.
        assert log.count(f"[{task['id']}] ignored") >= 1, tail(stack.logs / "worker.log")


@pytest.mark.timeout(120)
def test_task_past_consumer_timeout_is_not_run_again_by_a_restarted_worker(
    short_timeout_broker: RabbitNode, make_stack: Callable[..., Stack]
) -> None:
    """The requeued message of a finished run, redelivered to a restarted worker, is dropped.

    The worker is stopped, as supervisord would stop it, while it holds the copy that
    consumer_timeout requeued: its warm shutdown lets the run finish and gives the copy back
    to the queue. Started again, it gets that copy, finds the record finished and drops it.
    """
    stack = make_stack(TASKLINE_BROKER_URL=short_timeout_broker.url)
    stack.start()
    log = stack.logs / "worker.log"
    with stack.client() as api:
        task = submit(api, "reverse", {"text": "long"}, delay_seconds=10)
        nxt = submit(api, "reverse", {"text": "next"})
        wait_state(api, task["id"], {"STARTED", "PROGRESS"}, timeout=30)
        # The channel was closed and the requeued copy came back while the run goes on.
        wait_until(lambda: received(stack, task["id"]) >= 2, 30, interval=0.1)
        assert read(api, task["id"])["state"] in {"STARTED", "PROGRESS"}, tail(log)
        # SIGTERM to the main process alone: a warm shutdown, the run is let finish.
        old = stack.procs["worker"]
        old.send_signal(signal.SIGTERM)
        old.wait(30)
        assert read(api, task["id"])["state"] == "SUCCESS", tail(log)
        assert f"[{task['id']}] ignored" not in log.read_text(errors="replace"), tail(log)
        copies = received(stack, task["id"])

        stack.start("worker")
        # The restarted worker is handed the copy and drops it: it does not run the task.
        wait_until(lambda: received(stack, task["id"]) > copies, 30, interval=0.1)
        wait_until(lambda: f"[{task['id']}] ignored" in log.read_text(errors="replace"), 30)
        assert wait_done(api, nxt["id"], timeout=30)["result"] == "txen"
        ran_once_to_success(stack, api, task["id"], attempts=1)
        ran_once_to_success(stack, api, nxt["id"], attempts=1)
        text = log.read_text(errors="replace")
        assert text.count(f"[{task['id']}] succeeded") == 1, tail(log)
        assert text.count(f"[{task['id']}] ignored") == 1, tail(log)


@pytest.mark.timeout(120)
def test_task_past_consumer_timeout_is_not_run_twice_with_a_standby_worker(
    short_timeout_broker: RabbitNode, make_stack: Callable[..., Stack]
) -> None:
    """The standby that inherits the requeued message must not start a second run.

    The queue is single-active-consumer: the message requeued by consumer_timeout goes to the
    standby while the first run goes on. The run's lease tells the standby it is alive: the
    standby holds the message until the run ends, then drops it.
    """
    stack = make_stack(TASKLINE_BROKER_URL=short_timeout_broker.url)
    stack.start()
    # Registered with the stack, so that closing the stack stops it too.
    stack.procs["standby"] = start(worker_command(), stack.env, stack.logs / "standby.log")
    standby_log = stack.logs / "standby.log"
    wait_until(lambda: standby_log.exists() and " ready." in standby_log.read_text(), 60, 0.2)
    try:
        with stack.client() as api:
            task = submit(api, "reverse", {"text": "long"}, delay_seconds=10)
            done = wait_done(api, task["id"], timeout=60)
            assert done["state"] == "SUCCESS", done
            # The standby did get the requeued message, and held it rather than run it...
            held = [
                line
                for line in standby_log.read_text().splitlines()
                if "redelivered while" in line and f"task_id={task['id']}" in line
            ]
            assert held, tail(standby_log)
            # ...until the run ended: then it dropped it (checked only after that, so that
            # a second run it might start could not come after the checks).
            dropped = f"[{task['id']}] ignored"
            wait_until(lambda: dropped in standby_log.read_text(), 10, interval=0.1)
            assert f"[{task['id']}] succeeded" not in standby_log.read_text()
            ran_once_to_success(stack, api, task["id"], attempts=1)
    finally:
        # A second run would hold the standby's warm shutdown for seconds: end it at once.
        standby = stack.procs.pop("standby")
        os.killpg(standby.pid, signal.SIGKILL)
        standby.wait(10)
