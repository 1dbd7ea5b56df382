"""Flower as supervisord runs it (worker.flower): it shows everything and controls nothing,
unless TASKLINE_FLOWER_CONTROL=true brings its control endpoints back."""

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from flower import urls

from taskline.worker.flower import handler_class, read_only_routes
from tests.client import submit, wait_done
from tests.processes import Stack, isolated_env, start, stop
from tests.support import free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

AUTH = ("watcher", "flower-test-password")
# One request per kind of control: sending, applying, aborting, revoking, re-timing a task;
# stopping, resizing and re-routing a worker.
CONTROL_REQUESTS = (
    "/api/task/send-task/reverse",
    "/api/task/apply/reverse",
    "/api/task/async-apply/reverse",
    "/api/task/abort/some-task-id",
    "/api/task/revoke/some-task-id",
    "/api/task/rate-limit/reverse",
    "/api/task/timeout/reverse",
    "/api/worker/shutdown/taskline@host",
    "/api/worker/pool/restart/taskline@host",
    "/api/worker/pool/grow/taskline@host",
    "/api/worker/pool/shrink/taskline@host",
    "/api/worker/pool/autoscale/taskline@host",
    "/api/worker/queue/add-consumer/taskline@host",
    "/api/worker/queue/cancel-consumer/taskline@host",
)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 401
    except httpx.TransportError:
        return False


@pytest.fixture
def flower(tmp_path: Path) -> Iterator[Callable[..., httpx.Client]]:
    """Start the launcher for real, on its own port; a client of it, signed in."""
    procs, clients = [], []

    def launch(**overrides: str) -> httpx.Client:
        port = free_port()
        env = isolated_env(
            TASKLINE_FLOWER_PORT=str(port),
            TASKLINE_FLOWER_USER=AUTH[0],
            TASKLINE_FLOWER_PASSWORD=AUTH[1],
            **overrides,
        )
        args = [sys.executable, "-m", "taskline.worker.flower"]
        procs.append(start(args, env, tmp_path / f"flower-{port}.log"))
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers(url), 30, 0.1)
        clients.append(httpx.Client(base_url=url, auth=AUTH, timeout=10))
        return clients[-1]

    try:
        yield launch
    finally:
        for client in clients:
            client.close()
        for proc in procs:
            stop(proc)


def test_flower_shows_but_refuses_every_control_request(
    flower: Callable[..., httpx.Client],
) -> None:
    client = flower()
    assert client.get("/api/workers", auth=None).status_code == 401  # signing in is required
    assert client.get("/api/workers").status_code == 200
    assert client.get("/").status_code == 200  # the dashboard
    assert client.get("/tasks").status_code == 200
    for path in CONTROL_REQUESTS:
        assert client.post(path).status_code == 404, path


def test_metrics_and_healthcheck_need_the_password_as_every_page(
    flower: Callable[..., httpx.Client],
) -> None:
    client = flower()
    for path in ("/metrics", "/healthcheck", "/api/workers", "/api/tasks", "/tasks", "/"):
        assert client.get(path, auth=None).status_code == 401, path
        assert client.get(path, auth=(AUTH[0], "wrong")).status_code == 401, path
    assert "flower_events_total" in client.get("/metrics").text
    assert client.get("/healthcheck").text == "OK"


def test_a_result_reads_in_flower_as_in_the_api(
    flower: Callable[..., httpx.Client], stack: Stack, api: httpx.Client
) -> None:
    task = submit(api, "reverse", {"text": "flower"})
    assert wait_done(api, task["id"])["result"] == "rewolf"
    client = flower(
        TASKLINE_KEY_PREFIX=stack.settings.key_prefix, TASKLINE_QUEUE=stack.settings.queue
    )
    answer = client.get(f"/api/task/result/{task['id']}")
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"task-id": task["id"], "state": "SUCCESS", "result": "rewolf"}


def test_with_control_allowed_the_control_routes_exist(flower: Callable[..., httpx.Client]) -> None:
    client = flower(TASKLINE_FLOWER_CONTROL="true")
    assert client.get("/api/workers").status_code == 200
    # Present, and answering without acting: GET is not their method, and a rate limit
    # without its arguments is refused before anything is sent.
    for path in CONTROL_REQUESTS:
        assert client.get(path).status_code == 405, path
    refused = client.post("/api/task/rate-limit/reverse")
    assert refused.status_code == 400
    assert "workername" in refused.text


def test_only_control_routes_are_taken_out() -> None:
    kept = {handler_class(route).__name__ for route in read_only_routes(urls.handlers)}
    removed = {handler_class(route).__name__ for route in urls.handlers} - kept
    assert removed == {
        "TaskApply",
        "TaskAsyncApply",
        "TaskSend",
        "TaskAbort",
        "TaskRevoke",
        "TaskRateLimit",
        "TaskTimout",
        "WorkerShutDown",
        "WorkerPoolRestart",
        "WorkerPoolGrow",
        "WorkerPoolShrink",
        "WorkerPoolAutoscale",
        "WorkerQueueAddConsumer",
        "WorkerQueueCancelConsumer",
    }
    assert {"ListWorkers", "ListTasks", "TaskInfo", "TaskResult", "WorkersView"} <= kept
    assert "NotFoundErrorHandler" in kept  # unknown paths, and the removed ones, are a 404
