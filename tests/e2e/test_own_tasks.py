"""An author's task package, loaded through TASKLINE_TASK_PACKAGES, on the real stack.

The session's stack loads `examples/reports` (a package named `tasks`, from outside
Taskline's tree) and `tests.packages.guarded` beside the built-ins (tests/processes.py).
"""

import json
import os
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from httpx_sse import connect_sse

from tests.client import blocker, submit, wait_done, wait_state
from tests.processes import Stack

pytestmark = pytest.mark.e2e

TASKLINE = Path(sys.executable).with_name("taskline")
LINES = "\n".join(["the cat sat", "on the mat"] * 50)
MOMENT = timedelta(milliseconds=5)


def test_an_authors_task_type_is_listed_with_its_schema_and_policy(
    api: httpx.Client, stack: Stack
) -> None:
    types = {t["name"]: t for t in api.get("/task-types").json()}
    assert {"leibniz_pi", "reverse", "generate_serials", "word_report", "guarded"} <= set(types)
    report = types["word_report"]
    assert report["params_schema"]["required"] == ["text"]
    assert report["max_attempts"] == 3 and report["result_schema"]["type"] == "object"
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLINE_")}
    listed = subprocess.run(
        [str(TASKLINE), "--url", stack.url, "types"],
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("word_report"))
    assert "text*" in row and "fail_attempts" in row and "Count the lines" in row


def test_bad_params_are_refused_with_the_schemas_message_and_change_nothing(
    api: httpx.Client,
) -> None:
    before = api.get("/tasks", params={"name": "word_report", "limit": 500}).json()["items"]
    for params, said in (
        ({"text": ""}, "at least 1 character"),
        ({"text": "x", "top": 0}, "greater than or equal to 1"),
        ({"text": "x", "colour": "red"}, "Extra inputs are not permitted"),
    ):
        refused = api.post("/tasks", json={"name": "word_report", "params": params})
        assert refused.status_code == 422, refused.text
        assert said in refused.text
    unknown = api.post("/tasks", json={"name": "word_count", "params": {}})
    assert unknown.status_code == 422 and "word_report" in unknown.json()["detail"][0]["msg"]
    after = api.get("/tasks", params={"name": "word_report", "limit": 500}).json()["items"]
    assert after == before


def test_it_runs_in_order_with_the_builtins_and_reports_progress(api: httpx.Client) -> None:
    busy = blocker(api)
    order = [
        submit(api, "reverse", {"text": "first"}),
        submit(api, "word_report", {"text": LINES, "top": 1, "delay_seconds": 1}),
        submit(api, "reverse", {"text": "last"}),
    ]
    running = wait_state(api, order[1]["id"], {"PROGRESS"}, timeout=30)
    assert 0 < running["progress"]["percent"] < 100
    assert running["progress"]["total"] == 100
    done = [wait_done(api, task["id"]) for task in (busy, *order)]
    assert [t["state"] for t in done] == ["SUCCESS"] * 4
    started = [t["started_at"] for t in done]
    finished = [t["finished_at"] for t in done]
    assert started == sorted(started)
    assert all(f <= s for f, s in zip(finished, started[1:], strict=False))  # one at a time
    result = api.get(f"/tasks/{order[1]['id']}/result").json()["result"]
    assert result == {"lines": 100, "words": 300, "top": [["the", 100]]}


def test_a_cancel_stops_it_mid_run_at_its_checkpoint(api: httpx.Client) -> None:
    task = submit(api, "word_report", {"text": LINES, "delay_seconds": 60})
    wait_state(api, task["id"], {"PROGRESS"}, timeout=30)
    assert api.post(f"/tasks/{task['id']}/cancel").status_code == 200
    ended = wait_done(api, task["id"], timeout=10)
    assert ended["state"] == "CANCELLED"
    assert ended["error"] is None  # stopped by its checkpoint, not killed after the grace


def test_a_task_whose_code_the_api_cannot_import_runs_in_the_worker(api: httpx.Client) -> None:
    task = submit(api, "guarded", {})
    assert wait_done(api, task["id"])["state"] == "SUCCESS"
    assert api.get(f"/tasks/{task['id']}/result").json()["result"] == "ran in the worker"


def every_event(api: httpx.Client, task_id: str) -> list[dict]:
    """All the events of an ended task, from its first (resumed after the stream's start)."""
    headers = {"Last-Event-ID": "0-0"}
    with connect_sse(api, "GET", f"/tasks/{task_id}/events", headers=headers) as source:
        return [json.loads(event.data) for event in source.iter_sse()]


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def test_a_flaky_report_is_retried_after_its_backoff_while_the_line_goes_on(
    api: httpx.Client,
) -> None:
    """`word_report` retries FlakySourceError: 3 attempts in all, 0.5 s of backoff doubled,
    with full jitter. Two failures, then a success; a task submitted after it runs while it
    waits."""
    flaky = submit(api, "word_report", {"text": LINES, "top": 1, "fail_attempts": 2})
    meanwhile = submit(api, "reverse", {"text": "meanwhile"})
    done = wait_done(api, flaky["id"], timeout=60)
    assert done["state"] == "SUCCESS" and done["attempts"] == 3 and done["error"] is None
    assert [(e["type"], e["message"], e["attempt"]) for e in done["errors"]] == [
        ("FlakySourceError", "attempt 1 fails on purpose", 1),
        ("FlakySourceError", "attempt 2 fails on purpose", 2),
    ]
    assert api.get(f"/tasks/{flaky['id']}/result").json()["result"]["words"] == 300

    # Observed through its events: SCHEDULED between the attempts, each wait within its
    # backoff, released into the line once due.
    events = [e for e in every_event(api, flaky["id"]) if e["state"] != "PROGRESS"]
    assert [e["state"] for e in events] == [
        "QUEUED",
        *(["STARTED", "SCHEDULED", "QUEUED"] * 2),
        "STARTED",
        "SUCCESS",
    ]
    waits = [e for e in events if e["state"] == "SCHEDULED"]
    for n, (waiting, released) in enumerate(zip(waits, events[3::3], strict=True), start=1):
        assert waiting["attempts"] == waiting["error"]["attempt"] == n
        due = moment(waiting["not_before"])
        wait = due - moment(waiting["at"])  # (both read from the clock a moment apart)
        assert -MOMENT <= wait <= timedelta(seconds=0.5 * 2 ** (n - 1)) + MOMENT
        assert moment(released["at"]) >= due
    history = api.get(f"/tasks/{flaky['id']}/history").json()
    assert [h["error"] for h in history if h["change"] == "retry"] == done["errors"]

    # The worker was not held: the task submitted after it ran between its attempts.
    other = wait_done(api, meanwhile["id"])
    second_start = events[4]["at"]
    assert events[2]["at"] <= other["started_at"] <= other["finished_at"] <= second_start
    assert other["finished_at"] < done["started_at"]


def test_a_report_that_fails_every_attempt_ends_failure_after_the_last(
    api: httpx.Client,
) -> None:
    task = submit(api, "word_report", {"text": "the cat", "fail_attempts": 3})
    done = wait_done(api, task["id"], timeout=60)
    assert done["state"] == "FAILURE" and done["attempts"] == 3
    error = {k: done["error"][k] for k in ("type", "message")}  # an admin reads its traceback too
    assert error == {"type": "FlakySourceError", "message": "attempt 3 fails on purpose"}
    assert [e["attempt"] for e in done["errors"]] == [1, 2]  # the retried ones
    refused = api.get(f"/tasks/{task['id']}/result")
    assert refused.status_code == 409 and refused.json()["detail"]["state"] == "FAILURE"


def test_a_record_keeps_as_many_retried_failures_as_its_setting_says(
    make_stack: Callable[..., Stack],
) -> None:
    """TASKLINE_RETRY_ERRORS_KEPT=1: of two retried failures, `errors` keeps the last; the
    history keeps both."""
    stack = make_stack(TASKLINE_RETRY_ERRORS_KEPT="1")
    stack.start()
    with stack.client() as api:
        task = submit(api, "word_report", {"text": "the cat", "fail_attempts": 2})
        done = wait_done(api, task["id"], timeout=60)
        assert done["state"] == "SUCCESS" and done["attempts"] == 3
        assert [e["attempt"] for e in done["errors"]] == [2]
        history = api.get(f"/tasks/{task['id']}/history").json()
        assert [h["error"]["attempt"] for h in history if h["change"] == "retry"] == [1, 2]
