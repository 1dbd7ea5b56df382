"""Every stream fenced: `?wait=` long polls count against the same per-user cap as streams."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.client import submit
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

FAR_AWAY = "2100-01-01T00:00:00Z"
# How long a test waits for a long poll to end at all.
GENEROUS = 40.0


def waiting_task(client: httpx.Client) -> dict:
    return submit(client, "reverse", {"text": "watched"}, not_before=FAR_AWAY)


def slots(stack: Stack, user: str) -> int:
    return stack.redis.zcard(stack.key(f"streams:{user}"))


def test_long_polls_count_against_the_stream_cap(make_stack: Callable[..., Stack]) -> None:
    """Beyond the cap a long poll is a 429 with a JSON detail and Retry-After, like a stream;
    a read that need not wait (no `wait`, or a task that has ended) takes no slot; a long poll
    gives its slot back when it ends."""
    stack = make_stack(TASKLINE_MAX_STREAMS_PER_USER="2")
    stack.start("api")
    with (
        stack.client("alice") as alice,
        stack.client("bob") as bob,
        ThreadPoolExecutor(2) as pool,
    ):
        task, ended = waiting_task(alice), waiting_task(alice)
        assert alice.post(f"/tasks/{ended['id']}/cancel").status_code == 200
        path = f"/tasks/{task['id']}"

        def long_poll() -> httpx.Response:
            return alice.get(path, params={"wait": 60}, timeout=httpx.Timeout(10, read=90))

        polls = [pool.submit(long_poll) for _ in range(2)]
        wait_until(lambda: slots(stack, "alice") == 2, 10, what="two long polls hold slots")
        for refused in (alice.get(path, params={"wait": 1}), alice.get(f"{path}/events")):
            assert refused.status_code == 429, refused.text
            assert "2 event streams" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) > 0
        assert alice.get(path).status_code == 200
        assert alice.get(path, params={"wait": 0}).status_code == 200
        at_once = alice.get(f"/tasks/{ended['id']}", params={"wait": 30})
        assert at_once.status_code == 200 and at_once.json()["state"] == "CANCELLED"
        bobs = waiting_task(bob)  # the cap is per user
        assert bob.get(f"/tasks/{bobs['id']}", params={"wait": 0.5}).status_code == 200
        assert not any(poll.done() for poll in polls)
        assert alice.post(f"{path}/cancel").status_code == 200
        for poll in polls:
            answer = poll.result(timeout=GENEROUS)
            assert answer.status_code == 200 and answer.json()["state"] == "CANCELLED"
        wait_until(lambda: slots(stack, "alice") == 0, 10, what="the slots given back")
        later = waiting_task(alice)  # one that ends by its deadline gives its slot back too
        short = alice.get(f"/tasks/{later['id']}", params={"wait": 0.5})
        assert short.status_code == 200 and short.json()["state"] == "SCHEDULED"
        assert slots(stack, "alice") == 0
        assert alice.post(f"/tasks/{later['id']}/cancel").status_code == 200
        assert bob.post(f"/tasks/{bobs['id']}/cancel").status_code == 200
