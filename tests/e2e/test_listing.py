"""Listing through the sorted-set indexes, and forgetting tasks after their retention."""

from collections.abc import Callable

import httpx
import pytest

from taskline.core.records import Keys, now_ms
from taskline.core.transitions import Transitions
from tests.client import submit, wait_done
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def store_tasks(stack: Stack, count: int, cancel_every: int) -> list[str]:
    """Write `count` task records straight into Redis (no messages), oldest first."""
    transitions = Transitions(stack.redis, Keys(stack.settings.key_prefix))
    ids = [f"task-{i:05d}" for i in range(count)]
    with stack.redis.pipeline(transaction=False) as pipe:
        calls = transitions.calls
        for i, task_id in enumerate(ids):
            name = "reverse" if i % 2 else "leibniz_pi"
            create = calls.create(
                task_id, name, {"text": "x"}, 5, "", None, count, None, count, None
            )
            transitions.queue(pipe, create)
            if i % cancel_every == 0:
                transitions.queue(pipe, calls.cancel(task_id, 0, now_ms() + 3_600_000))
        pipe.execute()
    return ids


def pages(api: httpx.Client, **params: object) -> list[str]:
    seen, cursor = [], None
    while True:
        query = {**params, "limit": 500, **({"cursor": cursor} if cursor else {})}
        body = api.get("/tasks", params=query).json()
        seen += [t["id"] for t in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def test_pages_through_ten_thousand_tasks_without_gaps_or_repeats(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.start("api")
    ids = store_tasks(stack, 10_000, cancel_every=7)
    with stack.client() as api:
        listed = pages(api)
        assert listed == ids[::-1]  # newest first, each exactly once
        cancelled = pages(api, state="CANCELLED")
        assert cancelled == [t for i, t in enumerate(ids) if i % 7 == 0][::-1]
        queued_reverse = pages(api, state="QUEUED", name="reverse")
        assert queued_reverse == [t for i, t in enumerate(ids) if i % 7 and i % 2][::-1]
        assert api.get("/tasks", params={"limit": 501}).status_code == 422
        assert api.get("/tasks", params={"state": "NOPE"}).status_code == 422
        assert api.get("/tasks", params={"cursor": "abc"}).status_code == 422


def test_finished_tasks_are_forgotten_after_retention(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(TASKLINE_RETENTION_SECONDS="1")
    stack.start()
    with stack.client() as api:
        task = submit(api, "reverse", {"text": "brief"})
        wait_done(api, task["id"])
        wait_until(lambda: api.get(f"/tasks/{task['id']}").status_code == 404, 10, 0.1)
        assert task["id"] not in pages(api)
        assert not list(stack.redis.scan_iter(match=f"{stack.settings.key_prefix}*{task['id']}"))
        assert stack.redis.zcard(stack.key("index:state:SUCCESS")) == 0
        # the search indexes (ids, creation and end times, the text's value) forget it too
        indexes = list(stack.redis.scan_iter(match=stack.key("index:*")))
        assert all(stack.redis.zscore(key, task["id"]) is None for key in indexes)
