"""Live views of a task: Server-Sent Events (with resume) and the WebSocket."""

import base64
import json
import os
import socket
import struct
from collections.abc import Callable
from contextlib import ExitStack

import httpx
import pytest
from httpx_sse import aconnect_sse, connect_sse
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.client import TERMINAL, blocker, submit, token, wait_done, watch_then_release
from tests.processes import PASSWORDS, Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

FAR_AWAY = "2100-01-01T00:00:00Z"


def sse_events(
    api: httpx.Client, task_id: str, last_event_id: str | None = None, limit: int | None = None
) -> list[tuple[str, str, dict]]:
    headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
    out = []
    with connect_sse(api, "GET", f"/tasks/{task_id}/events", headers=headers, timeout=60) as source:
        assert source.response.headers["content-type"].startswith("text/event-stream")
        for event in source.iter_sse():
            out.append((event.id, event.event, json.loads(event.data)))
            if limit and len(out) >= limit:
                break
    return out


def test_sse_carries_rising_progress_and_ends_with_success(api: httpx.Client) -> None:
    busy = blocker(api, 1.0)
    task = submit(api, "leibniz_pi", {"digits": 7}, delay_seconds=2)
    events = sse_events(api, task["id"])
    first_kind, first = events[0][1], events[0][2]
    assert first_kind == "state" and first["id"] == task["id"]  # the current state first
    assert first["state"] == "QUEUED" and first["queue_position"] == 1
    progress = [data["progress"]["percent"] for _, kind, data in events if kind == "progress"]
    assert len(progress) >= 5 and progress == sorted(progress)
    assert events[-1][2]["state"] == "SUCCESS"
    states = [data["state"] for _, kind, data in events if kind == "state"]
    assert states == ["QUEUED", "STARTED", "SUCCESS"]
    assert wait_done(api, busy["id"])["finished_at"] <= wait_done(api, task["id"])["started_at"]


def test_sse_late_client_gets_current_state_and_stream_ends(api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "done"})
    wait_done(api, task["id"])
    events = sse_events(api, task["id"])
    assert len(events) == 1 and events[0][2]["state"] == "SUCCESS"
    assert events[0][2]["result"] == "enod"


def stream_id(event_id: str) -> tuple[int, int]:
    """A Redis stream id ("ms-seq") as numbers: as strings, "5-10" sorts before "5-9"."""
    ms, seq = event_id.split("-")
    return int(ms), int(seq)


def test_sse_resume_with_last_event_id_misses_nothing(api: httpx.Client) -> None:
    """A client that reconnects with the last id it saw gets every later event, once."""
    busy = blocker(api, 1.0)
    # Queued behind the blocker, then padded with progress: the stream is long and still
    # open when the first client leaves it.
    task = submit(api, "leibniz_pi", {"digits": 7}, delay_seconds=1.5)
    head = sse_events(api, task["id"], limit=4)
    assert len(head) == 4, head
    assert head[0][2]["state"] == "QUEUED", head  # the state when it connected...
    assert all(data["state"] not in TERMINAL for _, _, data in head), head  # ...not ended
    rest = sse_events(api, task["id"], last_event_id=head[-1][0])
    assert rest and rest[-1][2]["state"] == "SUCCESS", rest
    wait_done(api, task["id"])
    everything = [event_id for event_id, _, _ in sse_events(api, task["id"], "0-0")]
    resumed = [event_id for event_id, _, _ in head[1:] + rest]
    # Stream ids rise strictly: nothing repeated, nothing out of order.
    ids = [stream_id(event_id) for event_id in everything]
    assert ids == sorted(set(ids)), everything
    # The first client went on right after the state it was shown, the second right after
    # the last event the first saw: together they hold every event after that state.
    assert head[0][0] in everything, (head[0][0], everything)
    assert stream_id(everything[0]) <= stream_id(head[0][0]) < stream_id(head[1][0])
    assert stream_id(head[-1][0]) < stream_id(rest[0][0])
    assert resumed == everything[everything.index(head[0][0]) + 1 :], (resumed, everything)
    assert wait_done(api, busy["id"])["state"] == "SUCCESS"


def test_sse_of_unknown_task_is_404(api: httpx.Client) -> None:
    assert api.get("/tasks/nope/events").status_code == 404


def test_websocket_carries_the_same_events(api: httpx.Client, stack: Stack) -> None:
    task = submit(api, "leibniz_pi", {"digits": 6}, delay_seconds=1)
    access = token(api, "admin")
    messages = []
    url = f"ws://127.0.0.1:{stack.port}/tasks/{task['id']}/ws?access_token={access}"
    with connect(url) as ws:
        for raw in ws:
            messages.append(json.loads(raw))
    assert messages[0]["event"] == "state"
    assert any(m["event"] == "progress" for m in messages)
    assert messages[-1]["data"]["state"] == "SUCCESS"
    replay = sse_events(api, task["id"], last_event_id=messages[0]["id"])
    assert [m["id"] for m in messages[1:]] == [event_id for event_id, _, _ in replay]


async def _watch(
    client: httpx.AsyncClient, task_id: str, arrived: Callable[[], None]
) -> tuple[int, list[str], str]:
    """One SSE client: its status, the ids of the progress events it saw, its last state.
    `arrived` is called once it has its first event (or its refusal)."""
    seen, last = [], ""
    async with aconnect_sse(client, "GET", f"/tasks/{task_id}/events") as source:
        if source.response.status_code != 200:
            arrived()
            return source.response.status_code, seen, last
        async for event in source.aiter_sse():
            if not last:
                arrived()
            if event.event == "progress":
                seen.append(event.id)
            else:
                last = json.loads(event.data)["state"]
    return source.response.status_code, seen, last


def test_many_watchers_of_one_task_all_see_every_event(make_stack: Callable[..., Stack]) -> None:
    """More concurrent streams than the API has Redis connections: none is refused or cut.

    The task is postponed until every watcher has its first event, then brought back."""
    watchers = 150
    stack = make_stack(TASKLINE_MAX_STREAMS_PER_USER=str(watchers))
    stack.start()
    with stack.client() as api:
        task = submit(api, "leibniz_pi", {"digits": 6}, delay_seconds=1, not_before=FAR_AWAY)
        outcomes = watch_then_release(
            stack.url, task["id"], watchers, _watch, auth=("admin", PASSWORDS["admin"])
        )
        assert wait_done(api, task["id"])["state"] == "SUCCESS"
    progress = [
        event_id
        for event_id, fields in stack.redis.xrange(stack.key(f"events:{task['id']}"))
        if fields["state"] == "PROGRESS"
    ]
    assert len(progress) >= 3
    assert {status for status, _, _ in outcomes} == {200}
    assert all(seen == progress for _, seen, _ in outcomes)
    assert {last for _, _, last in outcomes} == {"SUCCESS"}
    assert stack.redis.zcard(stack.key("streams:admin")) == 0  # every slot given back


def ws_url(stack: Stack, task_id: str, **query: str) -> str:
    return str(httpx.URL(f"ws://127.0.0.1:{stack.port}/tasks/{task_id}/ws", params=query or None))


def handshake_refused(url: str) -> int:
    """The HTTP status that refused a WebSocket handshake."""
    with pytest.raises(InvalidStatus) as refused:
        connect(url, open_timeout=10).close()
    return refused.value.response.status_code


def closed_at_once(url: str) -> tuple[int, str]:
    """Code and reason of a WebSocket closed before it sent anything."""
    with connect(url, open_timeout=10) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    return closed.value.rcvd.code, closed.value.rcvd.reason


def waiting_task(api: httpx.Client) -> dict:
    """A task postponed far away: its streams stay open until it is cancelled."""
    return submit(api, "reverse", {"text": "later"}, not_before=FAR_AWAY)


BAD_EVENT_IDS = [
    "x",
    "1-2-3",
    "-1-0",
    "1.5-0",
    "99999999999999999999-0",  # past 64 bits: Redis would refuse the read
    "0-18446744073709551616",
    "18446744073709551615-18446744073709551615",  # nothing can follow it
    "1" * 21 + "-0",
]


def test_websocket_authenticates_before_accepting_then_refuses_as_the_sse_route(
    stack: Stack,
) -> None:
    """No socket opens without valid credentials (the handshake gets a 403). A signed-in
    caller's socket is closed at once, with 4000 + the SSE route's status and the reason,
    for a task it cannot see (4404) or a bad resume id (4422); none of them holds a stream."""
    with stack.client("alice") as alice, stack.client("bob") as bob:
        task = waiting_task(alice)
        alice_token, bob_token = token(alice, "alice"), token(bob, "bob")
        assert handshake_refused(ws_url(stack, task["id"])) == 403
        assert handshake_refused(ws_url(stack, task["id"], access_token="forged")) == 403
        unknown = [(task["id"], bob_token), ("no-such-task", alice_token), ("é" * 100, alice_token)]
        for task_id, bearer in unknown:
            code, reason = closed_at_once(ws_url(stack, task_id, access_token=bearer))
            assert code == 4404 and reason.startswith("task "), reason  # cut to fit a frame
            assert bob.get(f"/tasks/{task_id}/events").status_code == 404  # the same
        for bad in BAD_EVENT_IDS:
            code, reason = closed_at_once(
                ws_url(stack, task["id"], access_token=alice_token, last_event_id=bad)
            )
            assert code == 4422 and reason.startswith("last_event_id"), (bad, reason)
        assert stack.redis.zcard(stack.key("streams:alice")) == 0
        assert stack.redis.zcard(stack.key("streams:bob")) == 0
        assert alice.post(f"/tasks/{task['id']}/cancel").status_code == 200


def test_sse_refuses_a_bad_last_event_id_and_ends_a_resume_after_the_end(
    api: httpx.Client, stack: Stack
) -> None:
    task = submit(api, "reverse", {"text": "ended"})
    wait_done(api, task["id"])
    for bad in BAD_EVENT_IDS:
        response = api.get(f"/tasks/{task['id']}/events", headers={"Last-Event-ID": bad})
        assert response.status_code == 422, (bad, response.text)
        [error] = response.json()["detail"]
        assert error["loc"] == ["header", "last-event-id"], (bad, error)
    # The task had ended: resuming from its last event (or any later id) gives nothing more
    # and ends, instead of waiting for events that cannot come.
    last = sse_events(api, task["id"])[0][0]
    for resume in (last, "00" + last, "18446744073709551615-0"):
        assert sse_events(api, task["id"], last_event_id=resume) == []
    with connect(
        ws_url(stack, task["id"], access_token=token(api, "admin"), last_event_id=last)
    ) as ws:
        assert list(ws) == []


def raw_websocket(stack: Stack, path: str) -> socket.socket:
    """A WebSocket opened by hand, its first message read: a socket a test can drop at will."""
    sock = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
    lines = [
        f"GET {path} HTTP/1.1",
        "Host: 127.0.0.1",
        "Upgrade: websocket",
        "Connection: Upgrade",
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}",
        "Sec-WebSocket-Version: 13",
    ]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    received = b""
    while b"\r\n\r\n" not in received or b'"event":"state"' not in received:
        chunk = sock.recv(65536)
        assert chunk, received
        received += chunk
    assert received.startswith(b"HTTP/1.1 101 "), received
    return sock


def test_a_websocket_client_that_vanishes_gives_its_stream_back_at_once(stack: Stack) -> None:
    """The server reads while it sends: a client gone without a closing handshake (reset, or
    closed) is noticed at once, not at the next event, and its stream stops and is counted
    no more. Within 10 s: before the first keep-alive (15 s) and any lease lapse (20 s)."""
    with stack.client("alice") as alice:
        task = waiting_task(alice)
        path = f"/tasks/{task['id']}/ws?access_token={token(alice, 'alice')}"
        streams = stack.key("streams:alice")
        for reset in (True, False):
            sock = raw_websocket(stack, path)
            assert stack.redis.zcard(streams) == 1
            if reset:  # an RST, as when the client's host drops the connection
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.close()
            wait_until(lambda: stack.redis.zcard(streams) == 0, 10)
        assert alice.post(f"/tasks/{task['id']}/cancel").status_code == 200


def test_open_streams_are_capped_per_user_across_api_processes(
    make_stack: Callable[..., Stack],
) -> None:
    """SSE and WebSocket streams count together, per user, whichever API serves them: past
    the cap SSE answers 429 with Retry-After, a WebSocket is closed with 4429 at once."""
    first = make_stack(TASKLINE_MAX_STREAMS_PER_USER="3")
    second = make_stack(
        TASKLINE_MAX_STREAMS_PER_USER="3",
        TASKLINE_KEY_PREFIX=first.settings.key_prefix,
        TASKLINE_QUEUE=first.settings.queue,
    )
    first.start("api")  # no worker: the task waits, its streams stay open
    second.start("api")
    streams = first.key("streams:alice")
    with (
        first.client("alice") as alice,
        second.client("alice") as alice_too,
        first.client("bob") as bob,
        ExitStack() as open_streams,
    ):
        task = submit(alice, "reverse", {"text": "watched"})
        bob_task = submit(bob, "reverse", {"text": "bob's"})
        bearer = token(alice, "alice")
        events = f"/tasks/{task['id']}/events"

        def sse(client: httpx.Client, path: str = events) -> httpx.Response:
            return open_streams.enter_context(client.stream("GET", path))

        def websocket(api: Stack) -> None:
            ws = open_streams.enter_context(connect(ws_url(api, task["id"], access_token=bearer)))
            assert json.loads(ws.recv(timeout=10))["event"] == "state"  # it holds a slot

        held = [sse(alice), sse(alice_too)]
        websocket(first)
        assert [r.status_code for r in held] == [200, 200]
        assert first.redis.zcard(streams) == 3
        for client in (alice, alice_too):
            refused = client.get(events)
            assert refused.status_code == 429 and "3 event streams" in refused.json()["detail"]
            assert int(refused.headers["retry-after"]) > 0
        for api in (first, second):
            code, reason = closed_at_once(ws_url(api, task["id"], access_token=bearer))
            assert code == 4429 and "3 event streams" in reason
        assert sse(bob, f"/tasks/{bob_task['id']}/events").status_code == 200  # per user
        assert first.redis.zcard(streams) == 3
        held.pop().close()  # one SSE client leaves: its slot is free again at once
        wait_until(lambda: first.redis.zcard(streams) == 2, 10)
        websocket(second)
        assert first.redis.zcard(streams) == 3
        assert alice.get(events).status_code == 429
    # Every stream closed: every slot given back, nothing left to lapse.
    wait_until(lambda: first.redis.zcard(streams) == 0, 10)
    assert first.redis.zcard(first.key("streams:bob")) == 0
