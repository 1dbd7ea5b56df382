"""Live views of a task: Server-Sent Events (with resume) and the WebSocket."""

import asyncio
import json

import httpx
import pytest
from httpx_sse import aconnect_sse, connect_sse
from websockets.sync.client import connect

from tests.client import TERMINAL, blocker, submit, wait_done
from tests.processes import PASSWORDS, Stack

pytestmark = pytest.mark.e2e


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
    token = api.post(
        "/auth/token", data={"username": "admin", "password": PASSWORDS["admin"]}
    ).json()["access_token"]
    messages = []
    url = f"ws://127.0.0.1:{stack.port}/tasks/{task['id']}/ws?access_token={token}"
    with connect(url) as ws:
        for raw in ws:
            messages.append(json.loads(raw))
    assert messages[0]["event"] == "state"
    assert any(m["event"] == "progress" for m in messages)
    assert messages[-1]["data"]["state"] == "SUCCESS"
    replay = sse_events(api, task["id"], last_event_id=messages[0]["id"])
    assert [m["id"] for m in messages[1:]] == [event_id for event_id, _, _ in replay]


async def _watch(client: httpx.AsyncClient, task_id: str) -> tuple[int, list[str], str]:
    """One SSE client: its status, the ids of the progress events it saw, its last state."""
    seen, last = [], ""
    async with aconnect_sse(client, "GET", f"/tasks/{task_id}/events") as source:
        if source.response.status_code != 200:
            return source.response.status_code, seen, last
        async for event in source.aiter_sse():
            if event.event == "progress":
                seen.append(event.id)
            else:
                last = json.loads(event.data)["state"]
    return source.response.status_code, seen, last


def test_many_watchers_of_one_task_all_see_every_event(api: httpx.Client, stack: Stack) -> None:
    """More concurrent streams than the API has Redis connections: none is refused or cut."""
    watchers = 150
    busy = blocker(api, 1.5)
    task = submit(api, "leibniz_pi", {"digits": 6}, delay_seconds=1)

    async def watch_all() -> list[tuple[int, list[str], str]]:
        async with httpx.AsyncClient(
            base_url=stack.url,
            auth=("admin", PASSWORDS["admin"]),
            timeout=60,
            limits=httpx.Limits(max_connections=watchers),
        ) as client:
            return await asyncio.gather(*(_watch(client, task["id"]) for _ in range(watchers)))

    outcomes = asyncio.run(watch_all())
    assert wait_done(api, busy["id"])["state"] == "SUCCESS"
    progress = [
        event_id
        for event_id, fields in stack.redis.xrange(stack.key(f"events:{task['id']}"))
        if fields["state"] == "PROGRESS"
    ]
    assert len(progress) >= 3
    assert {status for status, _, _ in outcomes} == {200}
    assert all(seen == progress for _, seen, _ in outcomes)
    assert {last for _, _, last in outcomes} == {"SUCCESS"}
