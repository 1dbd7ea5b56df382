"""Two workers on one line: one runs it, the other waits; killed, the active one is replaced.

RabbitMQ's single active consumer gives the line to one worker. When that worker dies (kill -9
of its main process and its pool child), the standby receives the interrupted task's message
at once, holds it while the dead run's lease lasts (10 s at most), then runs the task again
and goes on with the line, in order.
"""

import os
import signal
import time
from collections.abc import Callable
from datetime import datetime

import httpx
import psutil
import pytest

from tests.client import submit, wait_done, wait_state
from tests.faults.conftest import ran_once_to_success, states
from tests.processes import Stack
from tests.support import TERMINAL
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

RUNNING = {"STARTED", "PROGRESS"}


def moment(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def workers(api: httpx.Client) -> list[dict]:
    response = api.get("/workers")
    assert response.status_code == 200, response.text
    return response.json()["workers"]


def node_of(stack: Stack, name: str) -> str:
    """The Celery node name of a worker of the stack ("" for another process)."""
    proc = stack.procs[name]
    if not name.startswith("worker") or proc is None:
        return ""
    command = psutil.Process(proc.pid).cmdline()
    hostname = next(a for a in command if a.startswith("--hostname="))
    return hostname.removeprefix("--hostname=").replace("%h", os.uname().nodename)


@pytest.mark.timeout(150)
def test_the_standby_takes_over_the_line_of_a_killed_worker_in_order(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.start()
    stack.start("worker-standby")
    with stack.client() as api:
        # One long task, then a line in mixed priorities, each run long enough to overlap
        # with another if two workers ran at once.
        first = submit(api, "reverse", {"text": "first"}, delay_seconds=3)
        wait_state(api, first["id"], RUNNING, timeout=30)
        line = [
            submit(api, "reverse", {"text": f"t{i}"}, priority=p, delay_seconds=0.3)
            for i, p in enumerate((5, 9, 1, 5, 9, 0))
        ]

        # Reported at the workers' next heartbeat (every 2 s).
        def reported() -> list[dict] | None:
            shown = workers(api)
            return shown if [w["task_id"] for w in shown] == [first["id"], None] else None

        shown = wait_until(reported, 10, 0.1)
        active, standby = shown
        assert (active["active"], standby["active"]) == (True, False), shown
        assert {w["queue"] for w in shown} == {stack.settings.queue}
        running = api.get(f"/tasks/{first['id']}").json()
        assert running["worker"].startswith(f"{active['node']}:"), (running, shown)

        # kill -9 the active worker: its main process and its pool child.
        (name,) = [n for n in stack.procs if node_of(stack, n) == active["node"]]
        proc = stack.procs[name]
        assert proc is not None
        group = [psutil.Process(proc.pid), *psutil.Process(proc.pid).children()]
        assert len(group) == 2, group
        killed_at = time.time()
        os.killpg(proc.pid, signal.SIGKILL)
        psutil.wait_procs(group, timeout=10)
        assert not any(p.is_running() for p in group)

        done = wait_done(api, first["id"], timeout=60)
        takeover = moment(done["started_at"]) - killed_at
        print(f"takeover: {takeover:.2f} s from kill -9 to the next start")
        assert takeover <= 15, takeover
        ran_once_to_success(stack, api, first["id"], attempts=2)
        assert done["result"] == "tsrif"

        ended = [wait_done(api, t["id"], timeout=60) for t in line]
        for task in ended:
            ran_once_to_success(stack, api, task["id"], attempts=1)
        # Priority first, then submission.
        expected = sorted(line, key=lambda t: (-t["priority"], line.index(t)))
        in_start_order = sorted(ended, key=lambda t: moment(t["started_at"]))
        assert [t["id"] for t in in_start_order] == [t["id"] for t in expected]
        # One at a time: every run (the rerun of the first included) ends before the next.
        runs = sorted([done, *ended], key=lambda t: moment(t["started_at"]))
        for before, after in zip(runs, runs[1:], strict=False):
            assert moment(before["finished_at"]) <= moment(after["started_at"]), (before, after)

        # The killed worker drops out once its report lapses; the standby is the active one.
        left = wait_until(
            lambda: len(w := workers(api)) == 1 and w, stack.settings.worker_expiry_seconds + 5
        )
        assert left[0]["active"] and left[0]["node"] != active["node"], left


@pytest.mark.timeout(150)
def test_a_stalled_active_worker_ends_its_task_once_and_the_line_goes_on(
    make_stack: Callable[..., Stack],
) -> None:
    """SIGSTOP of the active worker (main process and pool child) mid-task for 15 s, past
    its lease, then SIGCONT: the task ends once, recorded by one run, and the next runs."""
    stack = make_stack()
    stack.start()
    stack.start("worker-standby")
    with stack.client() as api:
        task = submit(api, "reverse", {"text": "stalled"}, delay_seconds=4)
        running = wait_state(api, task["id"], RUNNING, timeout=30)
        after = submit(api, "reverse", {"text": "after"})
        (name,) = [n for n in stack.procs if running["worker"].startswith(f"{node_of(stack, n)}:")]
        proc = stack.procs[name]
        assert proc is not None
        lease = stack.key(f"lease:{task['id']}")
        stalled = time.monotonic()
        os.killpg(proc.pid, signal.SIGSTOP)
        try:
            # The run cannot renew its lease: it lapses; the stall lasts 15 s.
            wait_until(lambda: not stack.redis.exists(lease), 20, 0.1)
            wait_until(lambda: time.monotonic() - stalled >= 15, 10, 0.1)
            # A stalled host holds the line: the standby runs nothing meanwhile.
            assert api.get(f"/tasks/{task['id']}").json()["state"] in RUNNING
            assert api.get(f"/tasks/{after['id']}").json()["state"] == "QUEUED"
        finally:
            os.killpg(proc.pid, signal.SIGCONT)
        done = wait_done(api, task["id"], timeout=90)
        assert done["state"] == "SUCCESS" and done["result"] == "dellats", done
        assert wait_done(api, after["id"], timeout=60)["state"] == "SUCCESS"
        # Once ended, nothing ends it again: not the stale run, not a rerun.
        seen = states(stack, task["id"])
        assert [s for s in seen if s in TERMINAL] == ["SUCCESS"], seen
        assert seen.count("STARTED") == done["attempts"], seen
        assert api.get(f"/tasks/{task['id']}").json() == done
