"""Redis (the records, the truth) stopped and started again under a running stack."""

import time
import uuid
from collections.abc import Callable

import httpx
import pytest

from tests.client import TERMINAL, submit, wait_state
from tests.faults.conftest import RedisServer, ran_once_to_success, tail
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

# The API waits connect_timeout (2 s) for Redis before answering 503.
FAST_ANSWER_SECONDS = 5.0


def timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    """The response and how long it took: a 503 must come fast, never after a hang."""
    began = time.monotonic()
    response = call()
    return response, time.monotonic() - began


def log_size(stack: Stack, name: str) -> int:
    """Where a process's log ends now, to look only at what it writes next."""
    path = stack.logs / f"{name}.log"
    return path.stat().st_size if path.exists() else 0


def scheduler_noticed(stack: Stack, since: int) -> bool:
    """Whether the scheduler logged a failed tick after `since` bytes of its log."""
    return b"scheduler tick failed" in (stack.logs / "scheduler.log").read_bytes()[since:]


def all_alive(stack: Stack) -> bool:
    """Whether no process of the stack has exited."""
    return all(proc.poll() is None for proc in stack.procs.values())


def ended(api: httpx.Client, task_id: str) -> dict | None:
    """The task once it has ended; a 503 (Redis just back, see below) reads as not yet."""
    response = api.get(f"/tasks/{task_id}")
    if response.status_code == 503:
        return None
    assert response.status_code == 200, response.text
    return response.json() if response.json()["state"] in TERMINAL else None


def accepted(api: httpx.Client, text: str) -> dict:
    """Submit, retrying a 503 as a client is told to (Redis may still be coming back)."""
    body = {"name": "reverse", "params": {"text": text}}

    def post() -> dict | None:
        """The created task, or None after a 503."""
        response = api.post("/tasks", json=body)
        if response.status_code == 503:
            return None
        assert response.status_code == 202, response.text
        return response.json()

    return wait_until(post, 30, interval=0.2)


def stop_redis_and_check_503s(server: RedisServer, stack: Stack, api: httpx.Client) -> None:
    """Stop Redis: reads, submissions, listings and searches answer 503 at once; nothing
    crashes."""
    known = submit(api, "reverse", {"text": "before"})
    wait_until(lambda: ended(api, known["id"]), 30)
    mark = log_size(stack, "scheduler")
    server.stop()
    body = {"name": "reverse", "params": {"text": "refused"}}
    calls = {
        "read": lambda: api.get(f"/tasks/{known['id']}"),
        "create": lambda: api.post("/tasks", json=body),
        "list": lambda: api.get("/tasks"),
        "search": lambda: api.get("/tasks", params={"state": ["QUEUED", "FAILURE"]}),
        "search by time": lambda: api.get("/tasks", params={"created_after": "0"}),
        "search by end": lambda: api.get("/tasks", params={"finished_after": "0"}),
        "search by id": lambda: api.get("/tasks", params={"id_prefix": "a"}),
        "search by text": lambda: api.get("/tasks", params={"param.text": "before"}),
        "workers": lambda: api.get("/workers"),
    }
    for name, call in calls.items():
        response, seconds = timed(call)
        assert response.status_code == 503, (name, response.status_code, response.text)
        assert seconds < FAST_ANSWER_SECONDS, (name, seconds)
        assert "Redis" in response.json()["detail"]
    ready = api.get("/ready")
    assert ready.status_code == 503 and ready.json()["redis"] is False
    # Every process meets the outage (the scheduler ticks ten times a second) and lives on.
    wait_until(lambda: scheduler_noticed(stack, mark), 30, interval=0.1)
    assert all_alive(stack), {n: tail(stack.logs / f"{n}.log") for n in stack.procs}


@pytest.mark.timeout(120)
def test_redis_outage_gets_fast_503_and_stack_recovers_without_restart(
    redis_stack: Callable[..., tuple[RedisServer, Stack]],
) -> None:
    """While Redis is down: 503 at once, nothing crashes; once back, tasks run again."""
    server, stack = redis_stack()
    stack.start()
    with stack.client() as api:
        stop_redis_and_check_503s(server, stack, api)
        server.start()  # no persistence: an empty dataset
        wait_until(lambda: api.get("/ready").status_code == 200, 30, interval=0.1)
        after = accepted(api, "after")
        done = wait_until(lambda: ended(api, after["id"]), 30)
        assert done["result"] == "retfa"
        ran_once_to_success(stack, api, after["id"], attempts=1)
        assert all_alive(stack)


@pytest.mark.timeout(120)
def test_no_503_once_redis_is_back(
    redis_stack: Callable[..., tuple[RedisServer, Stack]],
) -> None:
    """Once Redis answers again, every request is served: no leftover 503."""
    server, stack = redis_stack()
    stack.start()
    with stack.client() as api:
        stop_redis_and_check_503s(server, stack, api)
        server.start()
        back = time.monotonic()
        unknown = str(uuid.uuid4())
        answers: list[int] = []

        def three_seconds_observed() -> bool:
            """Read an unknown task; done once Redis has been back for three seconds."""
            answers.append(api.get(f"/tasks/{unknown}").status_code)
            return time.monotonic() - back >= 3

        wait_until(three_seconds_observed, 10, interval=0.05)
        # The empty dataset knows no task: 404, never 503.
        assert set(answers) == {404}, answers


@pytest.mark.timeout(120)
def test_task_running_through_a_redis_blip_still_succeeds(
    redis_stack: Callable[..., tuple[RedisServer, Stack]],
) -> None:
    """Redis restarts (append-only data kept) under a running task: it still ends SUCCESS."""
    server, stack = redis_stack(persist=True)
    stack.start()
    with stack.client() as api:
        task = submit(api, "reverse", {"text": "blip"}, delay_seconds=6)
        nxt = submit(api, "reverse", {"text": "next"})
        wait_state(api, task["id"], {"PROGRESS"}, timeout=30)
        mark = log_size(stack, "scheduler")
        stopped = time.monotonic()
        server.stop()
        # About two seconds down: the task misses progress writes meanwhile.
        wait_until(
            lambda: time.monotonic() - stopped >= 2 and scheduler_noticed(stack, mark),
            30,
            interval=0.1,
        )
        assert api.get(f"/tasks/{task['id']}").status_code == 503
        server.start()

        done = wait_until(lambda: ended(api, task["id"]), 60)
        assert done["state"] == "SUCCESS", (done, tail(stack.logs / "worker.log"))
        assert done["result"] == "pilb"
        ran_once_to_success(stack, api, task["id"], attempts=1)
        assert wait_until(lambda: ended(api, nxt["id"]), 30)["result"] == "txen"
        assert all_alive(stack)
