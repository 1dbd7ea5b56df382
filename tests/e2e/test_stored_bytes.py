"""Every byte bounded: what a task costs Redis, and what listings of large tasks answer."""

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.client import submit, wait_done
from tests.processes import Stack
from tests.support import stored_bytes

pytestmark = pytest.mark.e2e

# The largest `reverse` body: 100,000 emoji, 400,000 bytes of UTF-8.
EMOJI_TEXT = "\N{GRINNING FACE}" * 100_000
BODY_BYTES = len(EMOJI_TEXT.encode())
LATER = "2999-01-01T00:00:00Z"


def test_a_postponed_task_costs_redis_little_more_than_its_body(
    stack: Stack, api: httpx.Client
) -> None:
    """Params are kept once, as UTF-8 (not \\u-escaped): 1.38 MB for a 400 KB body before."""
    task = submit(api, "reverse", {"text": EMOJI_TEXT}, not_before=LATER)
    try:
        used = stored_bytes(stack.redis, stack.settings.key_prefix, task["id"])
        assert used <= 1.5 * BODY_BYTES, f"{used:,} bytes stored for a {BODY_BYTES:,}-byte body"
    finally:
        api.delete(f"/tasks/{task['id']}")


def test_a_finished_task_keeps_its_params_once_and_its_result_once(
    stack: Stack, api: httpx.Client
) -> None:
    """Celery's result holds the result, not the params again (nor as \\u escapes)."""
    task = wait_done(api, submit(api, "reverse", {"text": EMOJI_TEXT})["id"])
    try:
        assert task["state"] == "SUCCESS", task
        meta = json.loads(stack.redis.get(stack.key(f"celery-task-meta-{task['id']}")))
        assert "kwargs" not in meta and "args" not in meta, sorted(meta)
        used = stored_bytes(stack.redis, stack.settings.key_prefix, task["id"])
        assert used <= 1.5 * 2 * BODY_BYTES, f"{used:,} bytes for params and result"
    finally:
        api.delete(f"/tasks/{task['id']}")


TASK_LIMIT = 300_000
QUOTA = 700_000


@pytest.fixture(scope="module")
def tight(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose tasks may hold 300 KB each, and each user's 700 KB together."""
    stack = Stack(
        tmp_path_factory.mktemp("tight"),
        TASKLINE_MAX_TASK_BYTES=str(TASK_LIMIT),
        TASKLINE_MAX_USER_BYTES=str(QUOTA),
    )
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


def kept(stack: Stack) -> dict[str, str]:
    """Every key of the stack but the rate counters and the worker's heartbeat, with a digest
    of its value: what a refused request must leave as it was."""
    found = {}
    for key in stack.redis.scan_iter(f"{stack.settings.key_prefix}*"):
        if ":rate:" not in key and not key.endswith(":workers"):
            found[key] = stack.redis.dump(key)
    return found


def test_params_over_the_task_limit_are_a_413_and_change_nothing(tight: Stack) -> None:
    with tight.client("alice") as alice:
        small = submit(alice, "reverse", {"text": "small"}, not_before=LATER)
        before = kept(tight)
        body = {"name": "reverse", "params": {"text": EMOJI_TEXT}, "not_before": LATER}
        refused = alice.post("/tasks", json=body)
        assert refused.status_code == 413, refused.text
        assert "300000" in refused.json()["detail"], refused.json()
        edit = alice.patch(f"/tasks/{small['id']}", json={"params": {"text": EMOJI_TEXT}})
        assert edit.status_code == 413, edit.text
        assert kept(tight) == before


def test_a_result_over_the_task_limit_ends_the_task_failure_unkept(tight: Stack) -> None:
    """40,000 emoji: 160 KB of params are accepted; their 160 KB result would pass 300 KB."""
    with tight.client() as api:
        task = wait_done(api, submit(api, "reverse", {"text": EMOJI_TEXT[:40_000]})["id"])
        assert task["state"] == "FAILURE", task
        assert task["error"]["type"] == "ResultTooLargeError", task
        assert "300000" in task["error"]["message"], task
        meta = tight.redis.get(tight.key(f"celery-task-meta-{task['id']}")) or ""
        assert "\N{GRINNING FACE}" not in meta and len(meta) < 20_000, len(meta)
        assert api.get(f"/tasks/{task['id']}/result").status_code == 409
        assert api.delete(f"/tasks/{task['id']}").status_code == 204


def test_a_user_past_the_quota_gets_a_429_until_tasks_are_deleted(tight: Stack) -> None:
    body = {"name": "reverse", "params": {"text": EMOJI_TEXT[:60_000]}, "not_before": LATER}
    with tight.client("bob") as bob, tight.client("alice") as alice:
        first = submit(bob, body["name"], body["params"], not_before=LATER)
        submit(bob, body["name"], body["params"], not_before=LATER)  # 480 KB held
        before = kept(tight)
        refused = bob.post("/tasks", json=body)  # 720 KB would pass 700 KB
        assert refused.status_code == 429, refused.text
        assert "delete" in refused.json()["detail"], refused.json()
        assert kept(tight) == before
        submit(alice, body["name"], body["params"], not_before=LATER)  # alice has her own
        assert bob.delete(f"/tasks/{first['id']}").status_code == 204
        submit(bob, body["name"], body["params"], not_before=LATER)
