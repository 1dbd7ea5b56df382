"""Running a task again, and reading why it failed, through the real stack: a failure's
traceback (admins only, bounded), `POST /tasks/{id}/retry` and `POST /tasks/{id}/clone`."""

import json
from collections.abc import Callable

import httpx
import pytest

from tests.client import submit, wait_done
from tests.processes import Stack

pytestmark = pytest.mark.e2e

# word_report fails its first `fail_attempts` attempts; its policy runs it 3 times at most.
FAILING = {"text": "the cat sat", "fail_attempts": 3}


def failed_task(api: httpx.Client, **extra: object) -> dict:
    """A word_report that ended FAILURE after its last attempt."""
    task = submit(api, "word_report", FAILING, **extra)
    done = wait_done(api, task["id"], timeout=60)
    assert done["state"] == "FAILURE", done
    return done


def test_an_admin_reads_a_failures_traceback_its_owner_its_type_and_message(
    stack: Stack, api: httpx.Client
) -> None:
    with stack.client("alice") as alice:
        failed = failed_task(alice)
        task_id = failed["id"]
        assert failed["error"] == {
            "type": "FlakySourceError",
            "message": "attempt 3 fails on purpose",
        }
        assert "traceback" not in alice.get(f"/tasks/{task_id}?wait=1").json()["error"]
    # An admin, through the hot path and through the route (a query string).
    for path in (f"/tasks/{task_id}", f"/tasks/{task_id}?wait=1"):
        error = api.get(path).json()["error"]
        assert error["type"] == "FlakySourceError", path
        trace = error["traceback"]
        assert trace.startswith("Traceback (most recent call last):"), trace
        assert 'tasks/work.py", line' in trace and "in word_report" in trace
        assert trace.rstrip().endswith("FlakySourceError: attempt 3 fails on purpose")
    # Listings and the result's 409 carry type and message only, for admins too.
    listed = api.get("/tasks", params={"name": "word_report", "state": "FAILURE"}).json()
    assert all("traceback" not in t["error"] for t in listed["items"])
    assert "traceback" not in api.get(f"/tasks/{task_id}/result").json()["detail"]["error"]


def test_a_traceback_is_cut_to_its_setting_and_counted_in_its_owners_bytes(
    make_stack: Callable[..., Stack],
) -> None:
    bound = 120
    stack = make_stack(TASKLINE_TRACEBACK_BYTES=str(bound))
    stack.start()
    with stack.client() as api:
        failed = failed_task(api)
        trace = api.get(f"/tasks/{failed['id']}").json()["error"]["traceback"]
    assert len(trace.encode()) <= bound
    assert trace.startswith("[… cut]\n") and trace.endswith("attempt 3 fails on purpose\n")
    # Celery's own copy of the failure is cut the same way.
    meta = json.loads(stack.redis.get(stack.key(f"celery-task-meta-{failed['id']}")))
    assert meta["status"] == "FAILURE" and len(meta["traceback"].encode()) <= bound
    # Counted: the record's bytes are its params and its traceback.
    record = stack.redis.hgetall(stack.key(f"task:{failed['id']}"))
    assert int(record["bytes"]) == len(record["params"].encode()) + len(trace.encode())
    assert stack.redis.get(stack.key("bytes:admin")) == record["bytes"]
