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
from tests.faults.conftest import ran_once_to_success
from tests.processes import Stack
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
