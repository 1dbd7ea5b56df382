"""Every byte bounded: what a task costs Redis, and what listings of large tasks answer."""

import json
from collections.abc import Iterator

import httpx
import pytest
from httpx_sse import connect_sse

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
    with Stack(
        tmp_path_factory.mktemp("tight"),
        TASKLINE_MAX_TASK_BYTES=str(TASK_LIMIT),
        TASKLINE_MAX_USER_BYTES=str(QUOTA),
    ) as stack:
        stack.start()
        yield stack


def kept(stack: Stack) -> dict[str, str]:
    """Every key of the stack but the rate counters and the workers' reports, with a digest
    of its value: what a refused request must leave as it was."""
    found = {}
    for key in stack.redis.scan_iter(f"{stack.settings.key_prefix}*"):
        if ":rate:" not in key and not key.startswith(stack.key("workers")):
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


MIB = 1 << 20
MAX_PAGE = 500


def test_listings_of_the_largest_tasks_stay_under_a_mebibyte_and_link_the_whole(
    tight: Stack,
) -> None:
    """Each item of a page of 500 (the largest) takes under 1/500 MiB, whatever it holds:
    8 MB answered for 20 such tasks before. A task's own URL still gives the whole."""
    whole = EMOJI_TEXT[:50_000]  # 200 KB, twice: within the admin's 700 KB
    with tight.client() as api:
        done = wait_done(api, submit(api, "reverse", {"text": "\N{GRINNING FACE}" * 25_000})["id"])
        assert done["state"] == "SUCCESS", done
        waiting = [
            submit(api, "reverse", {"text": whole}, not_before=LATER)["id"] for _ in range(2)
        ]
        page = api.get("/tasks", params={"limit": MAX_PAGE})
        assert page.status_code == 200, page.text
        items = {t["id"]: t for t in page.json()["items"]}
        for task_id in [done["id"], *waiting]:
            item = items[task_id]
            assert item["truncated"] is True, item
            assert len(json.dumps(item).encode()) < MIB / MAX_PAGE
            assert item["links"]["self"] == f"/tasks/{task_id}"
        preview = items[waiting[0]]["params"]["text"]
        assert 0 < len(preview) < len(whole) and whole.startswith(preview)
        assert api.get(f"/tasks/{waiting[0]}").json()["params"]["text"] == whole
        assert api.get(f"/tasks/{done['id']}/result").json()["result"] == done["result"]
        assert len(done["result"]) == 25_000

        queue = api.get("/queue", params={"limit": 100}).json()
        assert queue["next"] == [] and len(json.dumps(queue).encode()) < MIB

        with httpx.Client(base_url=tight.url, timeout=10, headers=tight.bearer()) as http:
            with connect_sse(http, "GET", "/events") as source:
                first = next(iter(source.iter_sse()))
        assert first.event == "snapshot"
        snapshot = json.loads(first.data)
        shown = {t["id"]: t for t in snapshot["recent"] + snapshot["postponed"]}
        for task_id in [done["id"], *waiting]:
            task = shown[task_id]
            assert task["truncated"] is True and len(json.dumps(task).encode()) < MIB / 230
        for task_id in waiting:
            assert api.delete(f"/tasks/{task_id}").status_code == 204
