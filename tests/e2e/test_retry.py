"""Running a task again, and reading why it failed, through the real stack: a failure's
traceback (admins only, bounded), `POST /tasks/{id}/retry` and `POST /tasks/{id}/clone`."""

import functools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.client import at_once, read, submit, wait_done, wait_state
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


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def test_a_failure_is_retried_once_as_a_new_task_linked_both_ways(
    stack: Stack, api: httpx.Client
) -> None:
    with stack.client("alice") as alice, stack.client("bob") as bob:
        failed = failed_task(alice, priority=7)
        retried = alice.post(f"/tasks/{failed['id']}/retry")
        assert retried.status_code == 202, retried.text
        retry = retried.json()
        assert retried.headers["location"] == f"/tasks/{retry['id']}"
        assert retry["id"] != failed["id"] and retry["retry_of"] == failed["id"]
        assert (retry["name"], retry["params"], retry["priority"], retry["owner"]) == (
            failed["name"],
            failed["params"],
            7,
            "alice",
        )
        assert read(alice, failed["id"])["retried_by"] == retry["id"]
        assert alice.get(f"/tasks/{failed['id']}/history").json()[-1] | {"at": ""} == {
            "at": "",
            "change": "retried",
            "by": retry["id"],
        }
        created = alice.get(f"/tasks/{retry['id']}/history").json()[0]
        assert created["change"] == "created" and created["retry_of"] == failed["id"]

        # Once: a second retry names the first; another user's task reads as unknown.
        for client in (alice, api):
            again = client.post(f"/tasks/{failed['id']}/retry")
            assert again.status_code == 409, again.text
            assert again.json()["detail"]["retried_by"] == retry["id"]
            assert retry["id"] in again.json()["detail"]["message"]
        unknown = bob.post(f"/tasks/{failed['id']}/retry")
        assert unknown.status_code == 404 and unknown.json()["detail"]

        # A retry that is gone (cancelled, then deleted) may be replaced.
        assert alice.post(f"/tasks/{retry['id']}/cancel").status_code == 200
        assert alice.delete(f"/tasks/{retry['id']}").status_code == 204
        replaced = alice.post(f"/tasks/{failed['id']}/retry")
        assert replaced.status_code == 202, replaced.text
        assert read(alice, failed["id"])["retried_by"] == replaced.json()["id"]
        assert alice.post(f"/tasks/{replaced.json()['id']}/cancel").status_code == 200


def test_only_a_failed_or_cancelled_task_is_retried_and_a_key_answers_the_same_retry(
    api: httpx.Client,
) -> None:
    done = wait_done(api, submit(api, "reverse", {"text": "fine"})["id"])
    waiting = submit(api, "reverse", {"text": "later"}, not_before=later(3600))
    for task in (done, waiting):
        refused = api.post(f"/tasks/{task['id']}/retry")
        assert refused.status_code == 409, refused.text
        assert task["state"] in refused.json()["detail"]
        assert read(api, task["id"])["retried_by"] is None
    assert api.post(f"/tasks/{waiting['id']}/cancel").json()["state"] == "CANCELLED"
    key = {"Idempotency-Key": f"retry-{waiting['id']}"}
    first = api.post(f"/tasks/{waiting['id']}/retry", headers=key)
    assert first.status_code == 202, first.text
    assert first.json()["params"] == waiting["params"] and first.json()["not_before"] is None
    again = api.post(f"/tasks/{waiting['id']}/retry", headers=key)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"]
    # The same key on another request (a clone of the same task) is refused.
    other = api.post(f"/tasks/{waiting['id']}/clone", json={}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    assert wait_done(api, first.json()["id"])["result"] == "retal"


def test_a_clone_takes_any_tasks_params_with_changes_validated_as_a_submission(
    stack: Stack, api: httpx.Client
) -> None:
    with stack.client("alice") as alice, stack.client("bob") as bob:
        original = submit(alice, "word_report", {"text": "a b a", "top": 2}, priority=3)
        clone = alice.post(f"/tasks/{original['id']}/clone", json={"params": {"top": 1}})
        assert clone.status_code == 202, clone.text
        assert clone.headers["location"] == f"/tasks/{clone.json()['id']}"
        copy = clone.json()
        assert copy["clone_of"] == original["id"] and copy["priority"] == 3
        assert copy["params"] == {**original["params"], "top": 1}
        assert wait_done(alice, copy["id"])["result"]["top"] == [["a", 2]]
        assert read(alice, original["id"])["retried_by"] is None  # a clone changes nothing

        # null takes a key's default; priority and not_before as given.
        failed = failed_task(alice)
        fixed = alice.post(
            f"/tasks/{failed['id']}/clone",
            json={"params": {"fail_attempts": None}, "priority": 9, "not_before": later(3600)},
        )
        assert fixed.status_code == 202, fixed.text
        assert fixed.json()["params"]["fail_attempts"] == 0
        assert (fixed.json()["state"], fixed.json()["priority"]) == ("SCHEDULED", 9)
        assert alice.post(f"/tasks/{fixed.json()['id']}/cancel").status_code == 200

        # Refused as POST /tasks refuses the same params, nothing created.
        before = len(alice.get("/tasks", params={"name": "word_report"}).json()["items"])
        bad = alice.post(f"/tasks/{original['id']}/clone", json={"params": {"top": 0}})
        direct = alice.post(
            "/tasks", json={"name": "word_report", "params": {**original["params"], "top": 0}}
        )
        assert bad.status_code == direct.status_code == 422
        assert bad.json() == direct.json() and bad.json()["detail"][0]["loc"] == [
            "body",
            "params",
            "top",
        ]
        assert "greater than or equal to 1" in bad.json()["detail"][0]["msg"]
        assert alice.post(f"/tasks/{original['id']}/clone", json={"name": "x"}).status_code == 422
        after = len(alice.get("/tasks", params={"name": "word_report"}).json()["items"])
        assert after == before
        unknown = bob.post(f"/tasks/{original['id']}/clone", json={})
        assert unknown.status_code == 404 and unknown.json()["detail"]


def test_a_serial_clone_reserves_a_new_range_and_a_retry_never_takes_the_old_one(
    api: httpx.Client,
) -> None:
    params = {"code_model": "RT", "number": 1, "count": 5}
    ran = submit(api, "generate_serials", params, delay_seconds=30)
    wait_state(api, ran["id"], {"STARTED", "PROGRESS"})
    assert api.post(f"/tasks/{ran['id']}/cancel").json()["state"] == "CANCELLED"
    # It ran, so it keeps numbers 1–5 for good: neither a retry nor a plain clone gets them.
    for refused in (
        api.post(f"/tasks/{ran['id']}/retry"),
        api.post(f"/tasks/{ran['id']}/clone", json={}),
    ):
        assert refused.status_code == 409, refused.text
        assert f"reserved for task {ran['id']}" in refused.json()["detail"]
    assert read(api, ran["id"])["retried_by"] is None
    moved = api.post(
        f"/tasks/{ran['id']}/clone", json={"params": {"number": 6}, "delay_seconds": 0}
    )
    assert moved.status_code == 202, moved.text
    clone = moved.json()
    taken = api.post("/tasks", json={"name": "generate_serials", "params": params | {"number": 8}})
    assert taken.status_code == 409 and f"reserved for task {clone['id']}" in taken.text
    serials = wait_done(api, clone["id"])["result"]["serials"]
    assert [s[-8:] for s in serials] == [f"RT{n:06d}" for n in range(6, 11)]


def test_retries_and_clones_count_as_creations(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(TASKLINE_CREATIONS_PER_MINUTE="3")
    stack.start("api")  # no worker: nothing runs
    with stack.client() as api:
        task = submit(api, "reverse", {"text": "one"})
        assert api.post(f"/tasks/{task['id']}/cancel").json()["state"] == "CANCELLED"
        retry = api.post(f"/tasks/{task['id']}/retry")
        clone = api.post(f"/tasks/{task['id']}/clone", json={})
        assert [retry.status_code, clone.status_code] == [202, 202]
        assert api.post(f"/tasks/{retry.json()['id']}/cancel").status_code == 200
        for limited in (
            api.post(f"/tasks/{retry.json()['id']}/retry"),
            api.post(f"/tasks/{task['id']}/clone", json={}),
        ):
            assert limited.status_code == 429 and limited.headers["retry-after"]
        assert read(api, retry.json()["id"])["retried_by"] is None


@pytest.mark.timeout(90)
def test_retries_sent_together_make_one_retry_and_a_delete_racing_one_leaves_no_half(
    stack: Stack, api: httpx.Client
) -> None:
    with stack.client("alice") as alice, stack.client("bob") as bob:
        failed = failed_task(alice)
        clients = [stack.client(u) for u in ("alice", "admin") * 10]
        try:
            answers = at_once(
                [functools.partial(c.post, f"/tasks/{failed['id']}/retry") for c in clients]
            )
        finally:
            for client in clients:
                client.close()
        made = [a.json()["id"] for a in answers if a.status_code == 202]
        assert len(made) == 1, [(a.status_code, a.text) for a in answers]
        assert all(
            a.status_code == 409 and a.json()["detail"]["retried_by"] == made[0]
            for a in answers
            if a.status_code != 202
        )
        assert read(alice, failed["id"])["retried_by"] == made[0]
        history = alice.get(f"/tasks/{failed['id']}/history").json()
        assert [h for h in history if h["change"] == "retried"] == [
            {"at": history[-1]["at"], "change": "retried", "by": made[0]}
        ]
        # Another user's task reads as unknown, and is not retried.
        assert bob.post(f"/tasks/{failed['id']}/retry").status_code == 404
        # The retry is alice's or the admin's, whoever's request won: the admin reads both.
        assert wait_done(api, made[0])["state"] == "FAILURE"

        # A retry racing a delete of its task: the retry is made and linked, or is a 404
        # (the task gone first); either way the task is gone whole.
        for _ in range(5):
            task = submit(alice, "reverse", {"text": "x"}, not_before=later(3600))
            assert alice.post(f"/tasks/{task['id']}/cancel").status_code == 200
            with stack.client("alice") as other:
                retry, delete = at_once(
                    [
                        functools.partial(alice.post, f"/tasks/{task['id']}/retry"),
                        functools.partial(other.delete, f"/tasks/{task['id']}"),
                    ]
                )
            assert delete.status_code == 204, delete.text
            assert retry.status_code in {202, 404}, retry.text
            assert alice.get(f"/tasks/{task['id']}").status_code == 404
            assert alice.get(f"/tasks/{task['id']}/history").status_code == 404
            keys = list(stack.redis.scan_iter(stack.key(f"*{task['id']}*")))
            assert keys == [], keys
            if retry.status_code == 202:
                assert retry.json()["retry_of"] == task["id"]
                assert wait_done(alice, retry.json()["id"])["result"] == "x"
