"""A stack on a quorum queue (TASKLINE_QUEUE_TYPE=quorum): the queue keeps no priorities,
each turn runs the head of the Redis line, and the line keeps its order and its controls."""

import json
from collections.abc import Callable, Iterator

import httpx
import pytest
from kombu import Connection

from taskline.worker.celery_app import create_celery_app
from tests.client import (
    blocker,
    ran_in_order,
    read,
    runs_by_priority_then_submission,
    submit,
    wait_done,
    wait_state,
)
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


@pytest.fixture
def quorum(make_stack: Callable[..., Stack]) -> Iterator[tuple[Stack, httpx.Client]]:
    """A started stack of the test's own on a quorum queue, and its admin client."""
    stack = make_stack(TASKLINE_QUEUE_TYPE="quorum")
    stack.start()
    with stack.client() as api:
        yield stack, api


def test_the_queue_is_a_quorum_queue_with_one_active_consumer(
    quorum: tuple[Stack, httpx.Client],
) -> None:
    stack, _ = quorum
    with Connection(stack.settings.broker_url) as connection:
        channel = connection.default_channel
        # Declaring it as a classic priority queue is refused: it exists as a quorum queue.
        with pytest.raises(Exception, match="PRECONDITION_FAILED"):
            channel.queue_declare(  # type: ignore[attr-defined]
                stack.settings.queue,
                durable=True,
                auto_delete=False,
                arguments={"x-max-priority": 9, "x-single-active-consumer": True},
            )


def test_a_quorum_worker_sets_up_no_delayed_delivery_on_the_broker(
    quorum: tuple[Stack, httpx.Client],
) -> None:
    """Celery's native delayed delivery (for a quorum queue) would make exchanges and queues
    named for no run (celery_delayed_*), left on a shared broker: the worker skips it."""
    stack, _ = quorum
    for name in ("celery_delayed_delivery", "celery_delayed_0", "celery_delayed_27"):
        with Connection(stack.settings.broker_url) as connection:
            with pytest.raises(Exception, match="NOT_FOUND"):
                connection.default_channel.exchange_declare(  # type: ignore[attr-defined]
                    name, "topic", passive=True
                )


def test_twenty_tasks_run_by_priority_then_submission_one_at_a_time(
    quorum: tuple[Stack, httpx.Client],
) -> None:
    """The queue delivers the turns in the order they were sent; the tasks run in the
    line's order all the same."""
    _, api = quorum
    runs_by_priority_then_submission(api)


def test_cancel_postpone_and_priority_change_of_waiting_tasks_hold(
    quorum: tuple[Stack, httpx.Client],
) -> None:
    """While the worker is busy: a cancelled task never runs, a postponed one waits (and
    its turn runs the next task), a task moved to priority 9 runs first; every other task
    runs once, in the line's order."""
    stack, api = quorum
    busy = blocker(api, 3.0)
    first, cancelled, postponed, moved, last = (
        submit(api, "reverse", {"text": name})["id"]
        for name in ("first", "cancelled", "postponed", "moved", "last")
    )
    assert api.post(f"/tasks/{cancelled}/cancel").status_code == 200
    later = api.patch(f"/tasks/{postponed}", json={"not_before": "2999-01-01T00:00:00Z"})
    assert later.status_code == 200, later.text
    assert api.patch(f"/tasks/{moved}", json={"priority": 9}).status_code == 200
    ran_in_order(api, [moved, first, last])
    assert read(api, cancelled)["state"] == "CANCELLED"
    assert read(api, postponed)["state"] == "SCHEDULED"
    # Brought back, it runs at once, on a turn left over from those that came to nothing.
    assert api.patch(f"/tasks/{postponed}", json={"not_before": None}).status_code == 200
    ran_in_order(api, [postponed])
    wait_done(api, busy["id"])
    assert stack.redis.hget(stack.key(f"task:{cancelled}"), "started_at") is None


def test_a_message_sent_for_one_task_runs_the_line_head_under_its_own_id(
    quorum: tuple[Stack, httpx.Client],
) -> None:
    """A low-priority task submitted first, a high-priority one after: the first turn the
    queue delivers was sent for the low one, and runs the high one, whose events and Celery
    result carry the high one's id. The STARTED its claim stores is the high one's, under
    its key: the low one has no Celery meta until its own run."""
    stack, api = quorum
    busy = blocker(api, 1.5)
    low = submit(api, "reverse", {"text": "low"}, priority=0)["id"]
    high = submit(api, "reverse", {"text": "high"}, priority=9, delay_seconds=1.0)["id"]

    def celery_meta(task_id: str) -> dict | None:
        stored = stack.redis.get(stack.key(f"celery-task-meta-{task_id}"))
        return None if stored is None else json.loads(stored)

    wait_state(api, high, {"STARTED", "PROGRESS"})
    running = celery_meta(high)  # stored with the claim, or since by a progress report
    assert running is not None and running["status"] in ("STARTED", "PROGRESS"), running
    assert (running["task_id"], running["name"]) == (high, "reverse")
    assert celery_meta(low) is None
    ran_in_order(api, [high, low])
    assert api.get(f"/tasks/{high}/result").json()["result"] == "hgih"
    assert api.get(f"/tasks/{low}/result").json()["result"] == "wol"
    for task_id, result in ((high, "hgih"), (low, "wol")):
        meta = celery_meta(task_id)
        assert meta is not None and (meta["status"], meta["result"]) == ("SUCCESS", result)
        assert meta["task_id"] == task_id
    wait_done(api, busy["id"])
    log = (stack.logs / "worker.log").read_text()
    assert f"reverse[{high}] succeeded" in log and f"reverse[{low}] succeeded" in log


def test_a_cancelled_running_task_stops_and_the_line_goes_on(
    quorum: tuple[Stack, httpx.Client],
) -> None:
    _, api = quorum
    running = submit(api, "reverse", {"text": "long"}, delay_seconds=30)
    wait_state(api, running["id"], {"STARTED", "PROGRESS"})
    after = submit(api, "reverse", {"text": "after"})["id"]
    assert api.post(f"/tasks/{running['id']}/cancel").status_code in (200, 202)
    assert wait_done(api, running["id"], timeout=10)["state"] == "CANCELLED"
    assert wait_done(api, after, timeout=20)["state"] == "SUCCESS"


def test_turns_lost_from_the_queue_are_published_again_and_the_line_keeps_its_order(
    make_stack: Callable[..., Stack],
) -> None:
    """A purged quorum queue loses the turns of waiting tasks; the scheduler finds them
    missing (two looks, one second apart here) and publishes as many again, no more (a
    classic queue would reissue the whole line for its order): the tasks, and one submitted
    after the loss, run in the line's order, each once, and no turn is left over."""
    stack = make_stack(TASKLINE_QUEUE_TYPE="quorum", TASKLINE_RECONCILE_SECONDS="1")
    stack.start()
    with stack.client() as api:
        busy = blocker(api, 60)
        lost = [
            submit(api, "reverse", {"text": f"lost {i}"}, priority=priority)["id"]
            for i, priority in enumerate([1, 9, 5])
        ]
        app = create_celery_app(stack.settings, with_backend=False)
        with app.connection_for_write() as connection:
            assert connection.default_channel.queue_purge(stack.settings.queue) == 3
            later = submit(api, "reverse", {"text": "later"}, priority=0)["id"]

            def turns() -> int:
                found = [stack.redis.hget(stack.key(f"task:{t}"), "turn") for t in [*lost, later]]
                return sum(int(turn or 0) for turn in found)

            # The worker is held until the scheduler has published them, however slow it is.
            wait_until(lambda: turns() >= 4 + 3, 30, 0.1, "the lost turns published again")
            assert api.post(f"/tasks/{busy['id']}/cancel").status_code in (200, 202)
            ran_in_order(api, [lost[1], lost[2], lost[0], later])
            assert turns() == 4 + 3
            declared = connection.default_channel.queue_declare(  # type: ignore[attr-defined]
                stack.settings.queue, passive=True
            )
            assert declared.message_count == 0
        app.close()


@pytest.mark.timeout(120)
def test_each_line_on_its_own_quorum_queue_runs_the_head_of_its_own_line(
    make_stack: Callable[..., Stack],
) -> None:
    """Two lines on quorum queues, a worker each: a turn of a line is bound to the head of
    that line, never to the other line's task, and each line runs by priority on its own."""
    stack = make_stack(TASKLINE_QUEUE_TYPE="quorum", TASKLINE_LINES="slow=leibniz_pi;default=*")
    stack.start("api", "scheduler", "worker", "worker:slow")
    with stack.client() as api:
        busy = blocker(api, 3.0)  # the default line is busy all along
        wait_state(api, busy["id"], {"STARTED", "PROGRESS"})
        first = submit(api, "leibniz_pi", {"digits": 3}, delay_seconds=1)
        wait_state(api, first["id"], {"STARTED", "PROGRESS"})
        slow = [
            submit(api, "leibniz_pi", {"digits": 3}, priority=p, delay_seconds=0.2)
            for p in (2, 8, 5)
        ]
        assert {t["line"] for t in [first, *slow]} == {"slow"}
        expected = [first["id"], slow[1]["id"], slow[2]["id"], slow[0]["id"]]
        ran_in_order(api, expected)
        assert wait_done(api, busy["id"])["state"] == "SUCCESS"
    # Both lines' queues are quorum queues: declaring either as a classic one is refused.
    for queue in (stack.settings.queue, f"{stack.settings.queue}.slow"):
        with Connection(stack.settings.broker_url) as connection:
            with pytest.raises(Exception, match="PRECONDITION_FAILED"):
                connection.default_channel.queue_declare(  # type: ignore[attr-defined]
                    queue,
                    durable=True,
                    auto_delete=False,
                    arguments={"x-max-priority": 9, "x-single-active-consumer": True},
                )
