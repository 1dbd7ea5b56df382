"""GET /workers: the line's workers as they report themselves, the active one first."""

import socket
from collections.abc import Callable

import httpx
import psutil
import pytest

from tests.client import blocker, wait_done
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def listed(api: httpx.Client) -> list[dict]:
    response = api.get("/workers")
    assert response.status_code == 200, response.text
    return response.json()["workers"]


@pytest.mark.timeout(90)
def test_both_workers_of_a_line_are_shown_one_active(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start()
    stack.start("worker-standby")
    assert httpx.get(f"{stack.url}/workers").status_code == 401
    pids = {stack.procs[name].pid for name in ("worker", "worker-standby")}  # type: ignore[union-attr]
    with stack.client() as admin, stack.client("alice") as alice:
        busy = blocker(admin, 3)

        def reported() -> list[dict] | None:
            shown = listed(admin)
            return shown if [w["task_id"] for w in shown] == [busy["id"], None] else None

        active, standby = wait_until(reported, 10, 0.1)
        assert (active["active"], standby["active"]) == (True, False)
        assert {active["pid"], standby["pid"]} == pids
        assert admin.get(f"/tasks/{busy['id']}").json()["worker"].startswith(active["node"])
        for worker in (active, standby):
            assert worker["queue"] == stack.settings.queue
            assert worker["host"] == socket.gethostname()
            assert psutil.Process(worker["pid"]).is_running()
            assert 0 <= worker["cpu_percent"] <= 100
            assert 0 < worker["memory"]["used"] < worker["memory"]["total"]
            assert worker["disk"]["path"] == "/" and 0 < worker["disk"]["total"]
            assert worker["last_heartbeat"].endswith("Z")
        assert active["last_received"] and not standby["last_received"]
        whole = admin.get("/workers").json()
        assert whole["active"] == active["node"]
        assert whole["expiry_seconds"] == stack.settings.worker_expiry_seconds
        # Another user's running task is not named to alice.
        assert [w["task_id"] for w in listed(alice)] == [None, None]
        wait_done(admin, busy["id"])

        # A worker that stops says so: it leaves the list at once.
        stack.stop("worker-standby")
        assert [w["node"] for w in listed(admin)] == [active["node"]]
