"""Redis failover through Sentinel under a running stack: the primary killed (SIGKILL) in the
middle of a burst of submissions, the replica promoted, and the stack going on without a
restart."""

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import pytest
import redis

from tests.client import TERMINAL, submit, wait_state
from tests.faults.conftest import ReplicatedRedis, ran_once_to_success, tail
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

# A 503 comes at once, or after the connect timeout (2 s) spent waiting for a replica.
FAST_ANSWER_SECONDS = 5.0
# Every this many submissions of the burst is a serial range rather than a text to reverse.
SERIALS_EVERY = 4
SERIALS_PER_TASK = 10
CODE_MODEL = "FO"
# Tasks the burst must get accepted once the replica is promoted and has a replica again.
AFTER_FAILOVER = 10


@dataclass
class Answer:
    """One submission of the burst: when it began and ended, its status and the task."""

    began: float
    ended: float
    status: int
    task: dict | None = None


@dataclass
class Burst:
    """Submissions one after another, from a thread, until stopped."""

    stack: Stack
    answers: list[Answer] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def body(self, n: int) -> dict:
        if n % SERIALS_EVERY:
            return {"name": "reverse", "params": {"text": f"burst {n}"}}
        first = n // SERIALS_EVERY * SERIALS_PER_TASK
        params = {"code_model": CODE_MODEL, "number": first, "count": SERIALS_PER_TASK}
        return {"name": "generate_serials", "params": params}

    def run(self) -> None:
        with self.stack.client() as api:
            n = 0
            while not self.stop.is_set():
                began = time.monotonic()
                try:
                    response = api.post("/tasks", json=self.body(n))
                except httpx.TransportError as exc:  # a hang (10 s) or a dropped connection
                    self.failures.append(f"{type(exc).__name__} after {time.monotonic() - began}")
                    continue
                answer = Answer(began, time.monotonic(), response.status_code)
                if response.status_code == 202:
                    answer.task = response.json()
                    n += 1
                elif response.status_code != 503:
                    self.failures.append(f"{response.status_code}: {response.text}")
                self.answers.append(answer)
                self.stop.wait(0.02)

    def accepted(self, since: float = 0.0) -> list[dict]:
        """The tasks accepted (202) by requests begun at `since` or later."""
        return [a.task for a in self.answers if a.task is not None and a.began >= since]


def ended(api: httpx.Client, task_id: str) -> dict | None:
    response = api.get(f"/tasks/{task_id}")
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    return response.json() if response.json()["state"] in TERMINAL else None


def is_replica_of(port: int, primary_port: int) -> bool:
    """Whether the server on `port` replicates the one on `primary_port`, in sync."""
    try:
        with redis.Redis(port=port, socket_timeout=1, decode_responses=True) as client:
            info = client.info("replication")
    except redis.RedisError:
        return False
    return (
        info.get("role") == "slave"
        and int(info.get("master_port", 0)) == primary_port
        and info.get("master_link_status") == "up"
    )


def first_write_after(stack: Stack, task_id: str, wall_ms: int) -> int | None:
    """When (epoch ms, by Redis) the first event of a task after `wall_ms` was written."""
    later = stack.redis.xrange(stack.key(f"events:{task_id}"), min=str(wall_ms), count=1)
    return int(later[0][0].split("-")[0]) if later else None


@pytest.mark.timeout(300)
def test_a_failover_mid_burst_loses_no_accepted_task(
    replicated_redis: Callable[[], ReplicatedRedis], make_stack: Callable[..., Stack]
) -> None:
    """Every 202 before, during and after the failover ends SUCCESS, run once; meanwhile
    submissions answer 202 or a quick 503, never a 500 nor a hang; no process restarts."""
    group = replicated_redis()
    stack = make_stack(**group.settings())
    stack.start()
    burst = Burst(stack)
    with stack.client() as api:
        # A task running through the failover: its state writes are retried meanwhile.
        running = submit(api, "reverse", {"text": "through"}, delay_seconds=8)
        wait_state(api, running["id"], {"PROGRESS"}, timeout=30)
        submitting = threading.Thread(target=burst.run, daemon=True)
        submitting.start()
        try:
            wait_until(lambda: len(burst.accepted()) >= 30, 60, interval=0.05)
            killed_wall_ms, killed = int(time.time() * 1000), time.monotonic()
            os.kill(group.primary.proc.pid, signal.SIGKILL)
            group.primary.proc.wait(5)
            wait_until(lambda: group.primary_port() == group.replica.port, 60, interval=0.05)
            promoted = time.monotonic()
            # Restarted, as a supervisor would: the sentinels make it the new primary's replica.
            group.primary.start()
            wait_until(lambda: is_replica_of(group.primary.port, group.replica.port), 60, 0.05)
            replicated = time.monotonic()
            wait_until(
                lambda: len(burst.accepted(since=replicated)) >= AFTER_FAILOVER, 60, interval=0.05
            )
        finally:
            burst.stop.set()
            submitting.join(30)
        assert burst.failures == [], burst.failures
        slowest = max(a.ended - a.began for a in burst.answers)
        assert slowest < FAST_ANSWER_SECONDS, slowest

        accepted = [running, *burst.accepted()]
        finals = {t["id"]: wait_until(lambda t=t: ended(api, t["id"]), 120) for t in accepted}
        for task in accepted:
            assert finals[task["id"]]["state"] == "SUCCESS", (
                finals[task["id"]],
                tail(stack.logs / "worker.log"),
            )
            ran_once_to_success(stack, api, task["id"], attempts=1)

        # No serial issued twice: each range once, and taken still (the ledger survived).
        serials = [
            s
            for t in accepted
            if t["name"] == "generate_serials"
            for s in finals[t["id"]]["result"]["serials"]
        ]
        assert serials and len(serials) == len(set(serials))
        for task in accepted:
            if task["name"] == "generate_serials":
                again = api.post("/tasks", json={"name": task["name"], "params": task["params"]})
                assert again.status_code == 409, again.text
        assert all(proc.poll() is None for proc in stack.procs.values())

    first_202 = min(a.ended for a in burst.answers if a.task and a.began > killed)
    worker_write_ms = first_write_after(stack, running["id"], killed_wall_ms)
    print(
        f"\nfailover: promoted {promoted - killed:.2f} s after the kill; the running task's "
        f"first write {(worker_write_ms or 0) - killed_wall_ms} ms after it; the old primary "
        f"a replica again after {replicated - killed:.2f} s; the first 202 after "
        f"{first_202 - killed:.2f} s; {len(accepted)} tasks accepted, "
        f"{sum(a.status == 503 for a in burst.answers)} submissions answered 503"
    )


@pytest.mark.timeout(120)
def test_a_202_means_a_replica_holds_the_task(
    replicated_redis: Callable[[], ReplicatedRedis], make_stack: Callable[..., Stack]
) -> None:
    """With the replica stalled, a submission is a 503 within the connect timeout and keeps
    no task (a failover could lose it); once the replica goes on, a 202, which it holds."""
    group = replicated_redis()
    stack = make_stack(**group.settings())
    stack.start("api")
    replica = group.replica.proc.pid
    with stack.client() as api:
        os.kill(replica, signal.SIGSTOP)
        try:
            began = time.monotonic()
            refused = api.post("/tasks", json={"name": "reverse", "params": {"text": "alone"}})
            took = time.monotonic() - began
        finally:
            os.kill(replica, signal.SIGCONT)
        assert refused.status_code == 503, refused.text
        assert "replica" in refused.json()["detail"], refused.text
        assert took < FAST_ANSWER_SECONDS, took
        assert list(stack.redis.scan_iter(stack.key("task:*"))) == []
        task = submit(api, "reverse", {"text": "copied"})
    with redis.Redis(port=group.replica.port, decode_responses=True) as copy:
        assert copy.hget(stack.key(f"task:{task['id']}"), "state") == "QUEUED"
