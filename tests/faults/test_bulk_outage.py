"""Bulk actions while Redis (the records) is away: a fast 503 with a JSON detail, never a 500
or a hang, and the tasks as they were once it is back."""

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from tests.client import read, submit
from tests.faults.conftest import RedisServer
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

# The API waits connect_timeout (2 s) for Redis before answering 503.
FAST_ANSWER_SECONDS = 5.0


@pytest.mark.timeout(120)
def test_bulk_actions_answer_503_at_once_while_redis_is_away(
    redis_stack: Callable[..., tuple[RedisServer, Stack]],
) -> None:
    server, stack = redis_stack(persist=True)
    stack.start("api")  # nothing runs: the tasks stay as they are
    with stack.client("alice") as alice:
        later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        task = submit(alice, "reverse", {"text": "kept"}, not_before=later)["id"]
        server.stop()
        for action in ("cancel", "retry", "delete"):
            for body in ({"ids": [task]}, {"filter": {"state": "SCHEDULED"}}):
                began = time.monotonic()
                answer = alice.post(f"/tasks/bulk/{action}", json=body)
                seconds = time.monotonic() - began
                assert answer.status_code == 503, (action, body, answer.text)
                assert seconds < FAST_ANSWER_SECONDS, (action, body, seconds)
                assert "Redis" in str(answer.json()["detail"]), answer.text
        server.start()  # append-only data kept: the task is back as it was

        def back() -> bool:
            return alice.get(f"/tasks/{task}").status_code == 200

        wait_until(back, 30, interval=0.1)
        assert read(alice, task)["state"] == "SCHEDULED"
        changes = [h["change"] for h in alice.get(f"/tasks/{task}/history").json()]
        assert changes == ["created"]
