"""Every byte bounded: what a task costs Redis, and what listings of large tasks answer."""

import json

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
