"""Two API processes of one stack (same Redis, RabbitMQ, queue and prefix) answer alike: what
one accepted the other reads, lists, waits on, streams and cancels, and the per-user limits
(open streams, failed sign-ins) and bearer tokens are the same whichever process is asked."""

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

import httpx
import pytest
from httpx_sse import connect_sse

from tests.client import read, submit, token, wait_done, wait_state
from tests.processes import PASSWORDS, Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

FAR_AWAY = "2100-01-01T00:00:00Z"
STREAMS = 2  # the stream cap of this module's stack
# The name budget, and the first lockout (long enough to be asked about, twice).
FAILURES = 5
LOCKOUT_SECONDS = 30


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A worker, a scheduler and two API processes."""
    with Stack(
        tmp_path_factory.mktemp("replicas"),
        TASKLINE_MAX_STREAMS_PER_USER=str(STREAMS),
        TASKLINE_SIGNIN_FAILURES_PER_NAME=str(FAILURES),
        TASKLINE_SIGNIN_LOCKOUT_SECONDS=str(LOCKOUT_SECONDS),
    ) as stack:
        stack.start("worker", "scheduler", "api", "replica")
        yield stack


@pytest.fixture
def apis(stack: Stack) -> Iterator[tuple[httpx.Client, httpx.Client]]:
    """Clients of the first API (A) and of the second (B), signed in as admin."""
    with stack.client() as a, stack.client(url=stack.replica_url) as b:
        yield a, b


def test_a_task_accepted_by_one_api_is_read_listed_and_waited_on_through_the_other(
    apis: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = apis
    task = submit(a, "reverse", {"text": "replicas"}, delay_seconds=1)
    seen = read(b, task["id"])
    assert (seen["id"], seen["name"], seen["params"]) == (task["id"], "reverse", task["params"])
    listed = b.get("/tasks", params={"name": "reverse", "limit": 500})
    assert listed.status_code == 200
    assert task["id"] in [item["id"] for item in listed.json()["items"]]
    # B's long poll is woken by the worker's writes, not by its own deadline: it answers the
    # task ended, with its result, long before it would give up (the run lasts 1 s).
    asked = time.monotonic()
    waited = b.get(f"/tasks/{task['id']}", params={"wait": 30}, timeout=40)
    assert waited.status_code == 200, waited.text
    assert time.monotonic() - asked < 15, "the wait was not woken by the task's end"
    assert (waited.json()["state"], waited.json()["result"]) == ("SUCCESS", "sacilper")


def test_an_idempotency_key_used_through_one_api_holds_through_the_other(
    apis: tuple[httpx.Client, httpx.Client],
) -> None:
    a, b = apis
    body = {"name": "reverse", "params": {"text": "once"}}
    key = {"Idempotency-Key": f"replicas-{time.monotonic_ns()}"}
    first = a.post("/tasks", json=body, headers=key)
    assert first.status_code == 202, first.text
    again = b.post("/tasks", json=body, headers=key)
    assert again.status_code == 202 and again.json()["id"] == first.json()["id"], again.text
    other = b.post("/tasks", json={**body, "params": {"text": "twice"}}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]


def test_events_of_a_task_accepted_by_one_api_arrive_through_the_others_streams(
    stack: Stack, apis: tuple[httpx.Client, httpx.Client]
) -> None:
    """B's streams hear the worker while it runs the task A accepted: its progress comes as
    it is made (spread over the run), not all at once at its end."""
    a, b = apis
    timeout = httpx.Timeout(10, read=60)
    with (
        httpx.Client(base_url=stack.replica_url, auth=("admin", PASSWORDS["admin"])) as watcher,
        connect_sse(watcher, "GET", "/events", timeout=httpx.Timeout(10)) as line,
    ):
        line_events = line.iter_sse()
        assert next(line_events).event == "snapshot"
        task = submit(a, "leibniz_pi", {"digits": 7}, delay_seconds=2)
        arrived: list[tuple[float, str, str, dict]] = []
        with connect_sse(b, "GET", f"/tasks/{task['id']}/events", timeout=timeout) as source:
            for event in source.iter_sse():
                arrived.append((time.monotonic(), event.id, event.event, json.loads(event.data)))
        # The line's stream of B told of the task A created.
        created = next(
            json.loads(e.data)
            for e in line_events
            if e.event == "task" and json.loads(e.data)["id"] == task["id"]
        )
        assert created["kind"] == "created", created
    progress = [at for at, _, kind, _ in arrived if kind == "progress"]
    assert len(progress) >= 3, arrived
    assert arrived[-1][3]["state"] == "SUCCESS", arrived
    assert arrived[-1][0] - progress[0] > 1.0, arrived  # the run lasts 2 s: heard as it ran
    # After the state it was shown first, B's stream carried every event the run stored.
    after = stream_id(arrived[0][1])
    stored = [i for i, _ in stack.redis.xrange(stack.key(f"events:{task['id']}"))]
    assert [i for _, i, _, _ in arrived[1:]] == [i for i in stored if stream_id(i) > after]
    assert wait_done(a, task["id"])["state"] == "SUCCESS"


def stream_id(event_id: str) -> tuple[int, int]:
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


def test_a_task_accepted_by_one_api_is_cancelled_through_the_other(
    apis: tuple[httpx.Client, httpx.Client],
) -> None:
    """Running: B's cancel answers once the worker stopped it (B heard it). Waiting: at once."""
    a, b = apis
    running = submit(a, "reverse", {"text": "stop me"}, delay_seconds=30)
    wait_state(b, running["id"], {"STARTED", "PROGRESS"})
    cancelled = b.post(f"/tasks/{running['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    assert cancelled.json()["state"] == "CANCELLED", cancelled.json()
    assert read(a, running["id"])["state"] == "CANCELLED"
    waiting = submit(a, "reverse", {"text": "never"}, not_before=FAR_AWAY)
    assert b.post(f"/tasks/{waiting['id']}/cancel").json()["state"] == "CANCELLED"
    assert read(a, waiting["id"])["state"] == "CANCELLED"


def refused(api: httpx.Client, events: str) -> bool:
    """Whether a stream is refused for the cap (429), read without waiting for its end."""
    with api.stream("GET", events) as response:
        assert response.status_code == 429, (api.base_url, response.status_code)
        return f"{STREAMS} event streams" in json.loads(response.read())["detail"]


def test_a_users_stream_cap_counts_the_streams_open_on_both_apis(stack: Stack) -> None:
    """Cap 2: an SSE stream on A and a long poll on B use it up, so a third is refused by
    either; once A's stream ends, B admits one again."""
    with (
        stack.client("alice") as a,
        stack.client("alice", stack.replica_url) as b,
        ExitStack() as held,
        ThreadPoolExecutor(1) as pool,
    ):
        task = submit(a, "reverse", {"text": "watched"}, not_before=FAR_AWAY)
        events = f"/tasks/{task['id']}/events"
        streams = stack.key("streams:alice")
        on_a = held.enter_context(a.stream("GET", events))
        assert on_a.status_code == 200
        long_poll = pool.submit(b.get, f"/tasks/{task['id']}", params={"wait": 60}, timeout=70)
        wait_until(lambda: stack.redis.zcard(streams) == STREAMS, 10, what="both slots held")
        for api in (a, b):
            assert refused(api, events)
        on_a.close()
        wait_until(lambda: stack.redis.zcard(streams) == 1, 10, what="A's slot given back")
        assert held.enter_context(b.stream("GET", events)).status_code == 200
        assert refused(a, events)
        assert a.post(f"/tasks/{task['id']}/cancel").status_code == 200
        assert long_poll.result(timeout=30).json()["state"] == "CANCELLED"
    wait_until(lambda: stack.redis.zcard(streams) == 0, 10, what="every slot given back")


def test_failed_sign_ins_on_both_apis_count_together_and_lock_out_on_both(stack: Stack) -> None:
    """Budget 5: failures on A and on B add up; the one that uses the budget up locks bob out
    of both at once, even where his right password is remembered and was just let in."""
    wrong, right = ("bob", "wrong"), ("bob", PASSWORDS["bob"])
    with (
        httpx.Client(base_url=stack.url, timeout=10) as a,
        httpx.Client(base_url=stack.replica_url, timeout=10) as b,
    ):
        assert b.get("/tasks", auth=right).status_code == 200  # B remembers it
        failures = [api.get("/tasks", auth=wrong).status_code for api in (a, b, a, b)]
        assert failures == [401] * (FAILURES - 1)
        assert b.get("/tasks", auth=right).status_code == 200  # not locked out yet
        assert a.get("/tasks", auth=wrong).status_code == 401  # the last of the budget
        for api in (b, a):
            for credentials in (right, wrong):
                locked = api.get("/tasks", auth=credentials)
                assert locked.status_code == 429, (api.base_url, credentials, locked.text)
                assert "failed sign-ins" in locked.json()["detail"]


def test_a_token_revoked_through_one_api_is_refused_by_the_other_at_once(stack: Stack) -> None:
    with (
        httpx.Client(base_url=stack.url, timeout=10) as a,
        httpx.Client(base_url=stack.replica_url, timeout=10) as b,
    ):
        bearer = {"Authorization": f"Bearer {token(a, 'alice')}"}
        assert b.get("/tasks", headers=bearer).status_code == 200  # B remembers it
        assert a.delete("/auth/token", headers=bearer).status_code == 204
        assert b.get("/tasks", headers=bearer).status_code == 401
        assert a.get("/tasks", headers=bearer).status_code == 401


@pytest.mark.timeout(60)
def test_a_stream_on_one_api_ends_with_a_cancel_or_a_revocation_made_through_the_other(
    stack: Stack, apis: tuple[httpx.Client, httpx.Client]
) -> None:
    """A's task stream ends CANCELLED when B cancels the task; a stream A opened with a bearer
    token ends within 5 s of that token's revocation through B."""
    a, b = apis
    running = submit(a, "reverse", {"text": "stop me"}, delay_seconds=30)
    wait_state(a, running["id"], {"STARTED", "PROGRESS"})
    timeout = httpx.Timeout(10, read=20)
    with connect_sse(a, "GET", f"/tasks/{running['id']}/events", timeout=timeout) as source:
        told = source.iter_sse()
        assert json.loads(next(told).data)["state"] in {"STARTED", "PROGRESS"}
        assert b.post(f"/tasks/{running['id']}/cancel").json()["state"] == "CANCELLED"
        states = [json.loads(e.data)["state"] for e in told]
    assert states[-1] == "CANCELLED", states

    with (
        httpx.Client(base_url=stack.url, timeout=timeout) as on_a,
        httpx.Client(base_url=stack.replica_url, timeout=timeout) as on_b,
    ):
        waiting = submit(a, "reverse", {"text": "never"}, not_before=FAR_AWAY)
        bearer = {"Authorization": f"Bearer {token(on_a, 'admin')}"}
        path = f"/tasks/{waiting['id']}/events"
        with on_a.stream("GET", path, headers=bearer) as stream:
            assert stream.status_code == 200
            lines = stream.iter_lines()
            assert next(line for line in lines if line.startswith("data:"))
            assert on_b.delete("/auth/token", headers=bearer).status_code == 204
            revoked = time.monotonic()
            rest = list(lines)  # the stream ends
        assert time.monotonic() - revoked <= 5, rest
        assert a.post(f"/tasks/{waiting['id']}/cancel").json()["state"] == "CANCELLED"
