"""Controlling tasks through the real stack: cancel, postpone, edit, prioritise, delete, list."""

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import psutil
import pytest

from taskline.core.records import Keys
from taskline.worker.celery_app import create_celery_app
from tests.client import (
    TERMINAL,
    blocker,
    read,
    runs_by_priority_then_submission,
    submit,
    wait_done,
    wait_state,
)
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def parse(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def test_cancel_queued_task_never_runs(api: httpx.Client) -> None:
    busy = blocker(api, 1.0)
    target = submit(api, "reverse", {"text": "never"})
    cancelled = api.post(f"/tasks/{target['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "CANCELLED"
    after = submit(api, "reverse", {"text": "after"})
    wait_done(api, busy["id"])
    assert wait_done(api, after["id"])["state"] == "SUCCESS"
    task = read(api, target["id"])
    assert task["state"] == "CANCELLED" and task["started_at"] is None
    assert api.post(f"/tasks/{target['id']}/cancel").status_code == 409
    assert api.get(f"/tasks/{target['id']}/result").status_code == 409


def test_cancel_running_leibniz_within_a_second_and_next_starts(api: httpx.Client) -> None:
    running = submit(api, "leibniz_pi", {"digits": 8}, delay_seconds=30)
    nxt = submit(api, "reverse", {"text": "next"})
    wait_state(api, running["id"], {"PROGRESS"})
    asked = datetime.now(UTC)
    response = api.post(f"/tasks/{running['id']}/cancel")
    assert response.status_code == 200
    task = wait_state(api, running["id"], TERMINAL, timeout=5)
    assert task["state"] == "CANCELLED"
    assert parse(task["finished_at"]) - asked < timedelta(seconds=1)
    assert wait_done(api, nxt["id"])["state"] == "SUCCESS"


def gone(proc: psutil.Process) -> bool:
    """Whether a process has ended (a zombie not yet reaped by its parent has)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_task_ignoring_cancel_is_stopped_after_grace_and_worker_survives(
    api: httpx.Client, stack: Stack
) -> None:
    """Only killing its pool child stops a task deaf to cancel requests; the worker lives on.

    The run goes on through the grace period, then the scheduler has its pool child killed;
    the task is CANCELLED only once that child is gone, and the worker runs the next task.
    """
    worker = psutil.Process(stack.procs["worker"].pid)
    app = create_celery_app(stack.settings, with_backend=False)
    task_id = app.send_task("test_stubborn", kwargs={"delay_seconds": 30}).id
    app.close()

    # Sent by name, as another tool would: the worker adopts it into a record when it starts.
    def running() -> dict | None:
        task = api.get(f"/tasks/{task_id}").json()
        return task if task.get("state") == "STARTED" and task.get("worker") else None

    node, _, pid = wait_until(running, 30)["worker"].rpartition(":")
    child = psutil.Process(int(pid))
    assert child in worker.children(), (node, pid, worker.children())
    nxt = submit(api, "reverse", {"text": "still here"})
    grace = stack.settings.cancel_grace_seconds
    seen: list[str] = []

    def grace_over() -> bool:
        if time.monotonic() - asked >= grace - 0.2:  # a margin for the last read
            return True
        seen.append(read(api, task_id)["state"])
        assert seen[-1] in {"STARTED", "PROGRESS"} and not gone(child), (seen, child)
        return False

    # The cancel answers once the task ended or after 2 s: sent aside, so that the run can
    # be watched meanwhile.
    with stack.client() as canceller, ThreadPoolExecutor(1) as aside:
        asked, asked_at = time.monotonic(), datetime.now(UTC)
        answer = aside.submit(canceller.post, f"/tasks/{task_id}/cancel")
        key = Keys(stack.settings.key_prefix).task(task_id)
        wait_until(lambda: stack.redis.hget(key, "cancel_requested"), 5)
        # Through the grace period the run goes on: asked to stop, not stopped.
        wait_until(grace_over, grace + 5)
        assert seen, "the task was not looked at during the grace period"
        # A task that is never killed sleeps 30 s more: STARTED all along, this wait fails.
        task = wait_state(api, task_id, TERMINAL, timeout=15)
        assert gone(child), (task, child)
        response = answer.result(timeout=30)
    assert response.status_code == 200, response.text
    assert task["state"] == "CANCELLED", task
    assert task["error"]["message"] == "stopped after the cancel grace period"
    assert parse(task["finished_at"]) - asked_at >= timedelta(seconds=grace), task

    # The same worker process runs the next task, in a new pool child.
    assert wait_done(api, nxt["id"], timeout=30)["result"] == "ereh llits"
    assert stack.procs["worker"].poll() is None and worker.is_running()
    runner = stack.redis.hget(Keys(stack.settings.key_prefix).task(nxt["id"]), "runner")
    next_node, _, next_pid = runner.rpartition(":")
    assert next_node == node and int(next_pid) != child.pid, runner
    assert psutil.Process(int(next_pid)).ppid() == worker.pid, runner


def test_cancelled_task_stays_cancelled_across_restarts(own_stack: Stack) -> None:
    own_stack.start()
    with own_stack.client() as api:
        busy = blocker(api, 3.0)
        target = submit(api, "reverse", {"text": "never"})
        assert api.post(f"/tasks/{target['id']}/cancel").json()["state"] == "CANCELLED"
        own_stack.stop("worker", "api")
        own_stack.start("api", "worker")
        after = submit(api, "reverse", {"text": "after"})
        wait_done(api, after["id"])
        assert read(api, busy["id"])["state"] == "SUCCESS"  # redelivered and finished
        task = read(api, target["id"])
        assert task["state"] == "CANCELLED" and task["attempts"] == 0


def test_postponed_task_starts_on_time(api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "later"}, not_before=later(3))
    assert task["state"] == "SCHEDULED" and task["queue_position"] is None
    done = wait_done(api, task["id"], timeout=15)
    started, due = parse(done["started_at"]), parse(done["not_before"])
    assert due <= started <= due + timedelta(seconds=1)


def test_postponing_a_queued_task_gives_its_place_to_the_next(api: httpx.Client) -> None:
    busy = blocker(api, 1.5)
    first = submit(api, "reverse", {"text": "first"})
    second = submit(api, "reverse", {"text": "second"})
    assert (first["queue_position"], second["queue_position"]) == (1, 2)
    patched = api.patch(f"/tasks/{first['id']}", json={"not_before": later(2.5)})
    assert patched.status_code == 200 and patched.json()["state"] == "SCHEDULED"
    assert read(api, second["id"])["queue_position"] == 1
    done_second, done_first = wait_done(api, second["id"]), wait_done(api, first["id"])
    assert done_second["started_at"] < done_first["started_at"]
    assert done_first["started_at"] >= done_first["not_before"]
    wait_done(api, busy["id"])


def test_not_before_null_brings_a_postponed_task_back(api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "now"}, not_before=later(3600))
    back = api.patch(f"/tasks/{task['id']}", json={"not_before": None})
    assert back.status_code == 200 and back.json()["state"] in {"QUEUED", "STARTED"}
    assert wait_done(api, task["id"])["result"] == "won"


def test_postponed_task_survives_restart_of_worker_and_scheduler(own_stack: Stack) -> None:
    own_stack.start()
    with own_stack.client() as api:
        task = submit(api, "reverse", {"text": "durable"}, not_before=later(4))
        own_stack.stop("worker", "scheduler")
        own_stack.start("scheduler", "worker")
        done = wait_done(api, task["id"], timeout=30)
        assert done["state"] == "SUCCESS" and done["attempts"] == 1
        assert done["started_at"] >= done["not_before"]


def test_edited_params_are_the_ones_used_and_history_kept(api: httpx.Client) -> None:
    busy = blocker(api, 1.0)
    task = submit(api, "reverse", {"text": "abc"})
    etag = api.get(f"/tasks/{task['id']}").headers["etag"]
    edited = api.patch(
        f"/tasks/{task['id']}", json={"params": {"text": "xyz"}}, headers={"If-Match": etag}
    )
    assert edited.status_code == 200, edited.text
    assert edited.headers["etag"] != etag
    stale = api.patch(f"/tasks/{task['id']}", json={"priority": 1}, headers={"If-Match": etag})
    assert stale.status_code == 412
    bad = api.patch(f"/tasks/{task['id']}", json={"params": {"text": 5}})
    assert bad.status_code == 422
    assert wait_done(api, task["id"])["result"] == "zyx"
    history = api.get(f"/tasks/{task['id']}/history").json()
    assert [entry["change"] for entry in history] == ["created", "edited"]
    # The history says what changed, with a digest; it keeps no copy of the params.
    assert history[1]["params"]["changed"] == ["text"]
    assert len(history[1]["params"]["sha256"]) == 64 and "xyz" not in str(history)
    assert api.patch(f"/tasks/{task['id']}", json={"priority": 1}).status_code == 409
    wait_done(api, busy["id"])


def test_if_match_star_matches_any_version_and_odd_values_none(api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "m"}, not_before="2100-01-01T00:00:00Z")
    url = f"/tasks/{task['id']}"
    assert api.patch(url, json={"priority": 2}, headers={"If-Match": "*"}).status_code == 200
    for odd in ('"v99999999999999999999999"', "v-1", '"x"'):
        assert api.patch(url, json={"priority": 3}, headers={"If-Match": odd}).status_code == 412
    assert api.get(url).json()["priority"] == 2
    assert api.delete(url).status_code == 204


def test_out_of_range_moments_and_non_integer_priorities_are_422(api: httpx.Client) -> None:
    """A moment with no UTC form, and a boolean or fractional priority, change nothing."""
    task = submit(api, "reverse", {"text": "n"}, not_before="2100-01-01T00:00:00Z")
    url = f"/tasks/{task['id']}"
    bodies = [
        {"not_before": "0001-01-01T00:00:00+14:00"},
        {"not_before": "9999-12-31T23:59:59-14:00"},
        {"priority": True},
        {"priority": 2.5},
    ]
    for body in bodies:
        created = api.post("/tasks", json={"name": "reverse", "params": {"text": "x"}, **body})
        assert created.status_code == 422, (body, created.text)
        assert api.patch(url, json=body).status_code == 422, body
    assert api.get(url).json()["priority"] == 5


def test_changed_priority_reorders_the_line(api: httpx.Client) -> None:
    busy = blocker(api, 1.0)
    first = submit(api, "reverse", {"text": "a"})
    second = submit(api, "reverse", {"text": "b"})
    moved = api.patch(f"/tasks/{second['id']}", json={"priority": 9})
    assert moved.json()["queue_position"] == 1
    assert read(api, first["id"])["queue_position"] == 2
    assert wait_done(api, second["id"])["started_at"] < wait_done(api, first["id"])["started_at"]
    wait_done(api, busy["id"])


def test_twenty_tasks_run_by_priority_then_submission_one_at_a_time(api: httpx.Client) -> None:
    runs_by_priority_then_submission(api)


def test_delete_forgets_a_finished_task_but_not_a_running_one(api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "gone"})
    wait_done(api, task["id"])
    assert api.delete(f"/tasks/{task['id']}").status_code == 204
    assert api.get(f"/tasks/{task['id']}").status_code == 404
    listed = api.get("/tasks", params={"limit": 500}).json()["items"]
    assert task["id"] not in {t["id"] for t in listed}
    running = blocker(api, 1.0)
    assert api.delete(f"/tasks/{running['id']}").status_code == 409
    wait_done(api, running["id"])


def test_wait_answers_when_the_task_finishes(api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "wait"}, delay_seconds=1.0)
    response = api.get(f"/tasks/{task['id']}", params={"wait": 20}, timeout=30)
    answered = datetime.now(UTC)
    body = response.json()
    assert body["state"] == "SUCCESS"
    assert answered - parse(body["finished_at"]) < timedelta(milliseconds=100)
    short = submit(api, "reverse", {"text": "slow"}, delay_seconds=3)
    held = api.get(f"/tasks/{short['id']}", params={"wait": 0.5})
    assert held.json()["state"] in {"QUEUED", "STARTED", "PROGRESS"}
    assert api.get(f"/tasks/{task['id']}", params={"wait": 61}).status_code == 422
    wait_done(api, short["id"])


def test_queue_shows_running_next_and_workers(api: httpx.Client) -> None:
    busy = blocker(api, 1.5)
    waiting = submit(api, "reverse", {"text": "w"}, priority=7)
    queue = api.get("/queue").json()
    assert [t["id"] for t in queue["running"]] == [busy["id"]]
    assert queue["next"][0]["id"] == waiting["id"] and queue["depth"] >= 1
    assert len(queue["workers"]) == 1 and queue["consumers"] == 1
    metrics = api.get("/metrics").text
    assert 'taskline_tasks{state="STARTED"} 1.0' in metrics
    assert "taskline_workers 1.0\n" in metrics
    depth = next(line for line in metrics.splitlines() if line.startswith("taskline_queue_depth"))
    assert float(depth.split()[1]) >= 1
    wait_done(api, waiting["id"])


def test_a_numeric_not_before_is_seconds_since_the_epoch_whatever_its_size(
    api: httpx.Client,
) -> None:
    """Year 3000 given in seconds stays year 3000 (it was once read as milliseconds: 1971, and
    the task ran at once); a number past the last representable second is a 422."""
    year_3000 = int(datetime(3000, 1, 1, tzinfo=UTC).timestamp())
    task = submit(api, "reverse", {"text": "far"}, not_before=year_3000)
    url = f"/tasks/{task['id']}"
    assert task["state"] == "SCHEDULED"
    assert parse(task["not_before"]) == datetime(3000, 1, 1, tzinfo=UTC)
    soon = api.patch(url, json={"not_before": 4_102_444_800.5})  # 2100, and half a second
    assert soon.status_code == 200, soon.text
    assert parse(soon.json()["not_before"]) == datetime(2100, 1, 1, 0, 0, 0, 500_000, tzinfo=UTC)
    for number in (10**12, 1e20, -(10**12)):
        body = {"name": "reverse", "params": {"text": "x"}, "not_before": number}
        created = api.post("/tasks", json=body)
        assert created.status_code == 422 and created.json()["detail"], (number, created.text)
        assert api.patch(url, json={"not_before": number}).status_code == 422, number
    assert read(api, task["id"])["state"] == "SCHEDULED"
    assert api.delete(url).status_code == 204
