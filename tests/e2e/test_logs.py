"""The processes' logs as a machine reads them (TASKLINE_LOG_FORMAT=json) and as a person does
(text, the default): every line's fields, one access line per request with its route
template, request ids, the run's task id, and no secret anywhere."""

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from httpx_sse import connect_sse
from websockets.sync.client import connect

from tests.client import submit, token, wait_done
from tests.processes import PASSWORDS, Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

COMMON = ("time", "level", "logger", "process", "message")


def json_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of a log, each of which must be one JSON object with the common fields."""
    lines = path.read_text().splitlines()
    assert lines, f"{path.name} is empty"
    parsed = []
    for line in lines:
        entry = json.loads(line)  # fails on any line that is not JSON
        assert isinstance(entry, dict) and all(k in entry for k in COMMON), line
        moment = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
        assert entry["time"].endswith("Z") and moment.tzinfo == UTC, line
        assert isinstance(entry["process"]["pid"], int) and entry["process"]["name"], line
        parsed.append(entry)
    return parsed


def access_lines(entries: list[dict[str, Any]], request_id: str) -> list[dict[str, Any]]:
    return [
        e for e in entries if e["logger"] == "taskline.access" and e.get("request_id") == request_id
    ]


def rid() -> str:
    return f"test-{secrets.token_hex(6)}"


@pytest.mark.timeout(180)
def test_json_logs_carry_every_field_an_access_line_per_request_and_no_secret(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(TASKLINE_LOG_FORMAT="json")
    stack.start("worker", "api")
    ids = {name: rid() for name in ("submit", "wait", "read", "history", "missing", "anonymous")}
    insane = "no spaces allowed " + "x" * 200
    with stack.client() as api:
        bearer = token(api, "alice")
        alice = {"Authorization": f"Bearer {bearer}"}
        answer = api.post(
            "/tasks",
            json={"name": "word_report", "params": {"text": "one two\nthree"}},
            headers={"X-Request-ID": ids["submit"], **alice},
            auth=None,
        )
        assert answer.status_code == 202 and answer.headers["x-request-id"] == ids["submit"]
        task_id = answer.json()["id"]
        done = api.get(
            f"/tasks/{task_id}", params={"wait": 30}, headers={"X-Request-ID": ids["wait"]}
        )
        assert done.json()["state"] == "SUCCESS"
        api.get(f"/tasks/{task_id}", headers={"X-Request-ID": ids["read"], **alice}, auth=None)
        api.get(f"/tasks/{task_id}/history", headers={"X-Request-ID": ids["history"]})
        assert api.get("/nowhere", headers={"X-Request-ID": ids["missing"]}).status_code == 404
        refused = api.get("/tasks", headers={"X-Request-ID": insane})
        generated = refused.headers["x-request-id"]
        assert generated != insane and 0 < len(generated) <= 128
        with connect_sse(
            api, "GET", f"/tasks/{task_id}/events", headers={"X-Request-ID": ids["anonymous"]}
        ) as source:
            assert [event.event for event in source.iter_sse()] == ["state"]
    socket_url = f"{stack.url.replace('http', 'ws')}/tasks/{task_id}/ws?access_token={bearer}"
    with connect(socket_url, open_timeout=10) as socket:
        socket_id = socket.response.headers["x-request-id"]
        assert [json.loads(m)["data"]["state"] for m in socket] == ["SUCCESS"]
    assert httpx.get(f"{stack.url}/tasks", headers={"X-Request-ID": ids["anonymous"]}).is_error
    # Stopped, every process has written all it had: then read every line.
    stack.stop()
    api_log, worker_log = json_lines(stack.logs / "api.log"), json_lines(stack.logs / "worker.log")

    submitted = access_lines(api_log, ids["submit"])
    assert len(submitted) == 1, submitted
    assert submitted[0] | {"duration_ms": 0, "time": ""} == submitted[0] | {
        "time": "",
        "level": "INFO",
        "method": "POST",
        "route": "/tasks",
        "status": 202,
        "duration_ms": 0,
        "user": "alice",
        "task_id": task_id,
    }
    assert submitted[0]["duration_ms"] > 0
    for name, route in (("wait", "/tasks/{task_id}"), ("read", "/tasks/{task_id}")):
        (line,) = access_lines(api_log, ids[name])
        assert (line["route"], line["status"], line["task_id"]) == (route, 200, task_id)
    (history,) = access_lines(api_log, ids["history"])
    assert (history["route"], history["user"]) == ("/tasks/{task_id}/history", "admin")
    (missing,) = access_lines(api_log, ids["missing"])
    assert (missing["route"], missing["status"]) == (None, 404)
    (refusal,) = access_lines(api_log, generated)
    assert refusal["status"] == 200 and refusal["route"] == "/tasks"
    # The stream, once, when it ended; then the anonymous request (same id, its own line).
    stream, anonymous = access_lines(api_log, ids["anonymous"])
    assert (stream["route"], stream["status"], stream["user"]) == (
        "/tasks/{task_id}/events",
        200,
        "admin",
    )
    assert (anonymous["status"], "user" in anonymous) == (401, False)
    (websocket,) = access_lines(api_log, socket_id)
    assert websocket | {"duration_ms": 0} == websocket | {
        "method": "WS",
        "route": "/tasks/{task_id}/ws",
        "status": 101,
        "duration_ms": 0,
        "user": "alice",
        "task_id": task_id,
    }
    # uvicorn logs no request of its own; its WebSocket handshake line hides the token.
    uvicorns = [e for e in api_log if e["logger"] == "uvicorn.access" or "HTTP/1" in e["message"]]
    assert uvicorns == []
    handshakes = [e for e in api_log if "WebSocket /tasks/" in e["message"]]
    assert handshakes and all("access_token=[hidden]" in e["message"] for e in handshakes)

    # The worker's lines of the run carry its task id, in both of its processes.
    of_run = [e for e in worker_log if e.get("task_id") == task_id]
    counted = [e for e in of_run if e["message"].endswith("counted 3 words")]
    assert len(counted) == 1 and counted[0]["process"]["name"].startswith("worker/"), of_run
    assert {e["process"]["name"] for e in of_run} >= {"worker", counted[0]["process"]["name"]}
    assert any("succeeded" in e["message"] for e in of_run)

    for log in ("api.log", "worker.log"):
        text = (stack.logs / log).read_text()
        assert bearer not in text and PASSWORDS["alice"] not in text and insane not in text


def test_text_logs_stay_readable(stack: Stack, api: httpx.Client) -> None:
    request_id = rid()
    task = submit(api, "reverse", {"text": "readable"})
    wait_done(api, task["id"])
    answer = api.get(f"/tasks/{task['id']}", headers={"X-Request-ID": request_id})
    assert answer.headers["x-request-id"] == request_id
    log = stack.logs / "api.log"

    def line() -> str | None:
        return next((t for t in log.read_text().splitlines() if request_id in t), None)

    wait_until(lambda: line() is not None, 10, interval=0.05)
    access = line() or ""
    assert not access.startswith("{")
    assert " INFO    taskline.access api[" in access
    assert "] GET /tasks/{task_id} 200 " in access
    assert access.endswith(f"request_id={request_id} task_id={task['id']} user=admin")
    succeeded = f"Task reverse[{task['id']}] succeeded in "
    wait_until(lambda: succeeded in (stack.logs / "worker.log").read_text(), 10, interval=0.05)
    worker = next(t for t in (stack.logs / "worker.log").read_text().splitlines() if succeeded in t)
    assert " worker/ForkPoolWorker-" in worker and worker.endswith(f"task_id={task['id']}")
