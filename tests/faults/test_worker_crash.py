"""A worker killed mid-task: the late-acknowledged message is redelivered and runs again."""

import os
import signal
from collections.abc import Callable

import psutil
import pytest

from tests.client import submit, wait_done, wait_state
from tests.faults.conftest import pool_children, ran_once_to_success, received
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

RUNNING = {"STARTED", "PROGRESS"}


@pytest.mark.timeout(90)
def test_killed_pool_child_redelivers_task_which_then_succeeds(
    make_stack: Callable[..., Stack],
) -> None:
    """SIGKILL of the pool child: reject_on_worker_lost requeues, a new child runs it again."""
    stack = make_stack()
    stack.start()
    with stack.client() as api:
        task = submit(api, "reverse", {"text": "crash"}, delay_seconds=2)
        nxt = submit(api, "reverse", {"text": "next"})
        wait_state(api, task["id"], RUNNING, timeout=30)
        (child,) = pool_children(stack)
        child.send_signal(signal.SIGKILL)
        child.wait(10)

        done = wait_done(api, task["id"], timeout=45)
        assert done["state"] == "SUCCESS", done
        assert done["result"] == "hsarc"
        ran_once_to_success(stack, api, task["id"], attempts=2)
        assert received(stack, task["id"]) == 2
        after = wait_done(api, nxt["id"], timeout=30)
        assert after["result"] == "txen"
        ran_once_to_success(stack, api, nxt["id"], attempts=1)
    # The worker itself lived on and replaced its pool child.
    assert stack.procs["worker"].poll() is None
    replacements = pool_children(stack)
    assert replacements and child.pid not in [p.pid for p in replacements]


@pytest.mark.timeout(120)
def test_killed_worker_redelivers_task_to_the_restarted_worker(
    make_stack: Callable[..., Stack],
) -> None:
    """SIGKILL of the whole worker: RabbitMQ requeues the unacked message for the next one."""
    stack = make_stack()
    stack.start()
    with stack.client() as api:
        task = submit(api, "reverse", {"text": "crash"}, delay_seconds=2)
        nxt = submit(api, "reverse", {"text": "next"})
        wait_state(api, task["id"], RUNNING, timeout=30)
        worker = stack.procs["worker"]
        group = [psutil.Process(worker.pid), *pool_children(stack)]
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        psutil.wait_procs(group, timeout=10)
        assert not any(p.is_running() for p in group)
        # Nothing runs it meanwhile, and it is not lost: still "running" as far as Redis knows.
        assert api.get(f"/tasks/{task['id']}").json()["state"] in RUNNING

        stack.start("worker")
        done = wait_done(api, task["id"], timeout=45)
        assert done["state"] == "SUCCESS", done
        assert done["result"] == "hsarc"
        ran_once_to_success(stack, api, task["id"], attempts=2)
        assert received(stack, task["id"]) == 2
        after = wait_done(api, nxt["id"], timeout=30)
        assert after["result"] == "txen"
        ran_once_to_success(stack, api, nxt["id"], attempts=1)
        wait_until(lambda: api.get("/queue").json()["running"] == [], 10)


@pytest.mark.timeout(180)
def test_a_serial_task_that_ran_keeps_its_range_once_its_lost_run_puts_it_back_in_line(
    make_stack: Callable[..., Stack],
) -> None:
    """Its first page of serials is out when its worker dies for good; the scheduler puts it
    back in line (attempts 1). Neither an edit nor another task may take those serials, and
    its rerun issues the same range again."""
    stack = make_stack()
    stack.start()
    with stack.client() as api:
        serials = {"code_model": "7777", "number": 0, "count": 2000}
        task = submit(api, "generate_serials", {**serials, "delay_seconds": 600})
        url = f"/tasks/{task['id']}"
        page = wait_until(
            lambda: (r := api.get(f"{url}/pages/0")).status_code == 200 and r,
            30,
            0.1,
            "page 0 of the first run",
        )
        issued = page.json()["items"]
        worker = stack.procs["worker"]
        group = [psutil.Process(worker.pid), *pool_children(stack)]
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        psutil.wait_procs(group, timeout=10)
        assert wait_state(api, task["id"], {"QUEUED"}, timeout=90)["attempts"] == 1

        moved = api.patch(url, json={"params": {**serials, "number": 500_000}})
        assert moved.status_code == 409, moved.text
        assert "already run" in moved.json()["detail"]
        other = {"name": "generate_serials", "params": {**serials, "count": 1000}}
        assert api.post("/tasks", json=other).status_code == 409
        # Its own range, without the delay, it may keep.
        assert api.patch(url, json={"params": serials}).status_code == 200, url

        stack.start("worker")
        done = wait_done(api, task["id"], timeout=60)
        assert (done["state"], done["attempts"]) == ("SUCCESS", 2)
        assert api.get(f"{url}/pages/0").json()["items"] == issued
