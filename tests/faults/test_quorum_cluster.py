"""A three-node RabbitMQ cluster with a quorum queue: one node killed (SIGKILL of its Erlang
VM) in the middle of a burst of submissions with mixed priorities, while the worker is busy
with a long task. No accepted task is lost, each runs once, and in the line's order."""

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest

from tests.client import blocker, read, wait_done
from tests.faults.conftest import RabbitCluster, ran_once_to_success, states
from tests.faults.test_broker_outage import kept_or_accepted, listed_ids
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

PRIORITIES = (0, 3, 5, 9)
# Accepted tasks the burst needs before the kill, and again once the cluster serves without
# the node.
BEFORE_KILL = 15
AFTER_KILL = 15
# A submission answers within the publish timeout (connect_timeout, 2 s) and Redis's share.
FAST_ANSWER_SECONDS = 8.0


@dataclass
class Answer:
    status: int  # 0: no HTTP answer at all
    seconds: float
    task_id: str | None  # a 202's task, or the one a 503 kept (sent, never confirmed)
    text: str


@dataclass
class Burst:
    """Submissions of `reverse` at random priorities, one after another, from a thread."""

    stack: Stack
    answers: list[Answer] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        rng = random.Random(11)
        with self.stack.client() as api:
            number = 0
            while not self.stop.is_set():
                number += 1
                body = {
                    "name": "reverse",
                    "params": {"text": f"burst {number}"},
                    "priority": rng.choice(PRIORITIES),
                }
                began = time.monotonic()
                try:
                    response = api.post("/tasks", json=body, timeout=15)
                except httpx.HTTPError as exc:
                    self.answers.append(Answer(0, time.monotonic() - began, None, repr(exc)))
                    continue
                self.answers.append(
                    Answer(
                        response.status_code,
                        time.monotonic() - began,
                        kept_or_accepted(response),
                        response.text,
                    )
                )
                self.stop.wait(0.02)

    def accepted(self, since: int = 0) -> int:
        return sum(1 for a in self.answers[since:] if a.status == 202)


@pytest.mark.timeout(300)
def test_a_node_killed_mid_burst_loses_no_task_and_the_line_keeps_its_order(
    rabbit_cluster: Callable[[], RabbitCluster], make_stack: Callable[..., Stack]
) -> None:
    """Every 202 (and every task a 503 said it kept) runs once, to SUCCESS, after the task
    that was running, by priority then submission; the running task is not run again."""
    cluster = rabbit_cluster()
    stack = make_stack(
        TASKLINE_BROKER_URL=cluster.url,
        TASKLINE_QUEUE_TYPE="quorum",
        TASKLINE_CREATIONS_PER_MINUTE="100000",
    )
    stack.start()
    burst = Burst(stack)
    thread = threading.Thread(target=burst.run, daemon=True)
    with stack.client() as api:
        busy = blocker(api, 120)  # the worker is busy: every task of the burst waits
        thread.start()
        try:
            wait_until(lambda: burst.accepted() >= BEFORE_KILL, 60, interval=0.05)
            cluster.nodes[0].kill()  # the node every process connected to first
            killed = len(burst.answers)
            wait_until(lambda: burst.accepted(killed) >= AFTER_KILL, 120, interval=0.1)
        finally:
            burst.stop.set()
            thread.join(30)
        assert not thread.is_alive(), "the submitting thread hangs"

        odd = [a for a in burst.answers if a.status not in (202, 503)]
        assert not odd, odd
        slow = [a for a in burst.answers if a.seconds > FAST_ANSWER_SECONDS]
        assert not slow, slow
        accepted = [a.task_id for a in burst.answers if a.task_id]
        assert len(set(accepted)) == len(accepted)
        # Every one waits while the long task runs on: none has started yet.
        assert {read(api, t)["state"] for t in accepted} == {"QUEUED"}
        assert read(api, busy["id"])["state"] in ("STARTED", "PROGRESS")

        # The long task ends; the line runs.
        assert api.post(f"/tasks/{busy['id']}/cancel").status_code in (200, 202)
        assert wait_done(api, busy["id"], timeout=30)["state"] == "CANCELLED"
        wait_until(
            lambda: all(read(api, t)["state"] == "SUCCESS" for t in accepted), 120, interval=0.5
        )
        for task_id in accepted:
            ran_once_to_success(stack, api, task_id, attempts=1)
        # The task that ran across the kill was not run again by a returned turn.
        assert read(api, busy["id"])["attempts"] == 1
        assert states(stack, busy["id"]).count("STARTED") == 1
        # Nothing else was made, nothing lost.
        assert sorted(listed_ids(api)) == sorted([*accepted, busy["id"]])

    # The order: by priority, then by submission (the line's creation sequence).
    created = {t: int(stack.redis.hget(stack.key(f"task:{t}"), "seq")) for t in accepted}
    priority = {t: int(stack.redis.hget(stack.key(f"task:{t}"), "priority")) for t in accepted}
    expected = sorted(accepted, key=lambda t: (-priority[t], created[t]))
    started = [
        fields["id"]
        for _, fields in stack.redis.xrange(stack.key("line-events"))
        if fields["kind"] == "started" and fields["id"] != busy["id"]
    ]
    assert started == expected
    assert len(set(priority.values())) > 1
    assert stack.procs["worker"].poll() is None and stack.procs["api"].poll() is None
