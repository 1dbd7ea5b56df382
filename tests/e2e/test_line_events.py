"""`GET /events`: the whole line as Server-Sent Events, through real HTTP and a real worker."""

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import pytest
import redis
from httpx_sse import aconnect_sse, connect_sse

from tests.client import submit, token, wait_done, wait_state, watch_then_release
from tests.processes import PASSWORDS, Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

FAR_AWAY = "2100-01-01T00:00:00Z"


class Watcher:
    """Reads `/events` in a thread, keeping (id, event, data) of each event it gets."""

    def __init__(self, stack: Stack, user: str, headers: dict[str, str] | None = None) -> None:
        self.client = httpx.Client(
            base_url=stack.url, auth=(user, PASSWORDS[user]), timeout=httpx.Timeout(5, read=60)
        )
        self.headers = headers or {}
        self.events: list[tuple[str | None, str, dict]] = []
        self.status: int | None = None
        self.error: Exception | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)

    def _read(self) -> None:
        try:
            with connect_sse(self.client, "GET", "/events", headers=self.headers) as source:
                self.status = source.response.status_code
                for event in source.iter_sse():
                    self.events.append((event.id or None, event.event, json.loads(event.data)))
        except (httpx.HTTPError, RuntimeError) as exc:
            if not self._stop.is_set():  # closing the client ends the read: that is expected
                self.error = exc

    def of(self, task_id: str) -> list[tuple[str | None, str, dict]]:
        """The `task` events of one task."""
        return [e for e in self.events if e[1] == "task" and e[2]["id"] == task_id]

    def kinds(self, task_id: str) -> list[str]:
        return [data["kind"] for _, _, data in self.of(task_id)]


@contextmanager
def watching(stack: Stack, user: str = "admin", **headers: str) -> Iterator[Watcher]:
    watcher = Watcher(stack, user, headers)
    watcher._thread.start()
    try:
        wait_until(lambda: watcher.events, 10)  # the snapshot (or the first missed event)
        yield watcher
        assert watcher.error is None, watcher.error
    finally:
        watcher._stop.set()
        watcher.client.close()
        watcher._thread.join(5)


def test_the_line_stream_starts_with_a_snapshot_then_each_change_in_order(
    stack: Stack, api: httpx.Client
) -> None:
    with watching(stack) as watcher:
        assert watcher.events[0][1] == "snapshot"
        assert {"running", "waiting", "postponed", "recent", "depth"} <= watcher.events[0][2].keys()
        task = submit(api, "leibniz_pi", {"digits": 3}, delay_seconds=0.6)
        wait_done(api, task["id"])
        wait_until(lambda: "ended" in watcher.kinds(task["id"]), 10)
        kinds = watcher.kinds(task["id"])
        assert kinds[:2] == ["created", "started"] and kinds[-1] == "ended", kinds
        assert "progress" in kinds
        events = watcher.of(task["id"])
        assert events[-1][2]["state"] == "SUCCESS" and events[1][2]["attempts"] == 1
        percents = [d["progress"]["percent"] for _, _, d in events if d["kind"] == "progress"]
        assert percents == sorted(percents) and percents[-1] == 100.0
        ids = [event_id for event_id, _, _ in events]
        assert ids == sorted(ids, key=lambda i: tuple(map(int, i.split("-"))))
        # The line's order came after the changes that moved it.
        assert any(kind == "line" for _, kind, _ in watcher.events)


def test_a_watcher_resumes_from_its_last_event_and_misses_nothing(
    stack: Stack, api: httpx.Client
) -> None:
    with watching(stack) as first:
        task = submit(api, "reverse", {"text": "resume"}, delay_seconds=0.5)
        wait_until(lambda: "created" in first.kinds(task["id"]), 10)
        created = first.of(task["id"])[0][0]
        wait_done(api, task["id"])
        wait_until(lambda: "ended" in first.kinds(task["id"]), 10)
        everything = [e[0] for e in first.of(task["id"])]
    with watching(stack, **{"Last-Event-ID": created}) as resumed:
        wait_until(lambda: "ended" in resumed.kinds(task["id"]), 10)
        assert resumed.events[0][1] == "task"  # no snapshot when resuming
        assert [e[0] for e in resumed.of(task["id"])] == everything[1:]


def test_users_see_only_their_own_tasks_on_the_line_and_admins_all(stack: Stack) -> None:
    with (
        stack.client("alice") as alice,
        stack.client("bob") as bob,
        watching(stack, "alice") as alices,
        watching(stack, "admin") as admins,
    ):
        mine = submit(alice, "reverse", {"text": "mine"})
        theirs = submit(bob, "reverse", {"text": "theirs"})
        wait_done(alice, mine["id"])
        wait_done(bob, theirs["id"])
        wait_until(lambda: "ended" in admins.kinds(theirs["id"]), 10)
        wait_until(lambda: "ended" in alices.kinds(mine["id"]), 10)
        assert "ended" in admins.kinds(mine["id"])
        seen_by_alice = json.dumps([data for _, _, data in alices.events])
        assert theirs["id"] not in seen_by_alice


def test_bad_positions_and_credentials_are_refused_before_the_stream(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as anonymous:
        assert anonymous.get("/events").status_code == 401
        assert anonymous.get("/events", params={"access_token": "forged"}).status_code == 401
        auth = ("admin", PASSWORDS["admin"])
        for bad in ("99999999999999999999-0", "1-x", "../", "0"):
            answer = anonymous.get("/events", headers={"Last-Event-ID": bad}, auth=auth)
            assert answer.status_code == 422 and "detail" in answer.json(), bad
        with connect_sse(
            anonymous,
            "GET",
            "/events",
            params={"access_token": token(anonymous, "alice")},
            timeout=10,
        ) as source:
            assert source.response.status_code == 200
            assert next(source.iter_sse()).event == "snapshot"


def test_a_revoked_token_ends_its_stream(stack: Stack, api: httpx.Client) -> None:
    """Revoking every token of a user (a leaked password) shuts their open streams too."""
    with stack.client("bob") as bob:
        access = token(bob, "bob")
        with httpx.Client(base_url=stack.url, timeout=httpx.Timeout(5, read=30)) as anonymous:
            with connect_sse(
                anonymous, "GET", "/events", params={"access_token": access}
            ) as source:
                events = source.iter_sse()
                assert next(events).event == "snapshot"
                assert api.delete("/auth/users/bob/tokens").status_code == 204
                began = time.monotonic()
                later = [event.event for event in events]  # ends when the server ends it
        assert time.monotonic() - began < 15, later
        assert bob.get("/tasks").status_code == 200  # Basic still works: only tokens went


def test_a_resume_from_before_the_trimmed_start_gets_a_new_snapshot(
    stack: Stack, api: httpx.Client
) -> None:
    """Redis keeps the last ~10,000 changes: a watcher away longer is told the whole line
    again rather than resuming with a silent gap."""
    with watching(stack) as first:
        position = first.events[0][0]
    for i in range(3):
        submit(api, "reverse", {"text": f"trim {i}"})
    stack.redis.xtrim(stack.key("line-events"), maxlen=1, approximate=False)
    with watching(stack, **{"Last-Event-ID": position}) as resumed:
        assert resumed.events[0][1] == "snapshot"


def test_the_largest_event_id_is_refused_as_any_bad_one(stack: Stack) -> None:
    largest = f"{2**64 - 1}-{2**64 - 1}"
    answer = httpx.get(
        f"{stack.url}/events",
        headers={"Last-Event-ID": largest},
        auth=("admin", PASSWORDS["admin"]),
    )
    assert answer.status_code == 422 and "detail" in answer.json()


def test_a_user_is_not_told_of_line_changes_made_only_by_others(stack: Stack) -> None:
    with (
        stack.client("alice") as alice,
        stack.client("bob") as bob,
        watching(stack, "bob") as bobs,
    ):
        # Bob's task waits behind alice's running one: a change of the line that is his.
        # (Without the wait, a worker that claims it before the stream is read leaves the
        # line as bob last saw it: nothing to tell.)
        task = submit(alice, "reverse", {"text": "not for bob"}, delay_seconds=1.5)
        wait_state(alice, task["id"], {"STARTED", "PROGRESS"})
        mine = submit(bob, "reverse", {"text": "bob's"})
        wait_done(alice, task["id"])
        wait_done(bob, mine["id"])
        wait_until(lambda: "ended" in bobs.kinds(mine["id"]), 10)
        lines = [data for _, kind, data in bobs.events if kind == "line"]
        # One line event when bob's own task came into line; none for alice's.
        assert lines and all(data["waiting"] in ([], [mine["id"]]) for data in lines)
        assert len(lines) <= 2, lines


class Commands:
    """Counts the Redis commands that begin with `start` while it is open (MONITOR, read in a
    thread: it sees every client of the shared Redis, and keeps only what matches)."""

    def __init__(self, client: redis.Redis, start: str) -> None:
        self.client = client
        self.start = start.lower()
        self.count = 0
        self._end = f"exists {self.start.split()[1]}-{uuid.uuid4().hex}"
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._monitor = client.monitor()

    def _read(self) -> None:
        while True:
            command = self._monitor.next_command()["command"].lower()
            if command == self._end:
                return
            if command.startswith(self.start):
                self.count += 1

    def __enter__(self) -> "Commands":
        self._monitor.__enter__()  # MONITOR answered: whatever follows is seen
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.execute_command(*self._end.split())  # the last command it reads
        self._thread.join(30)
        self._monitor.__exit__()
        assert not self._thread.is_alive()


async def _watch_line(
    client: httpx.AsyncClient, task_id: str, arrived: Callable[[], None]
) -> tuple[int, str, list[str]]:
    """One `/events` client: its status, its first event, the kinds of the task's events it
    saw until the task ended. `arrived` is called once it has its first event (or none)."""
    first, kinds = "", []
    try:
        async with aconnect_sse(client, "GET", "/events") as source:
            async for event in source.aiter_sse():
                if not first:
                    first = event.event
                    arrived()
                data = json.loads(event.data) if event.data else {}
                if event.event == "task" and data["id"] == task_id:
                    kinds.append(data["kind"])
                    if data["kind"] == "ended":
                        break
    finally:
        if not first:
            arrived()
    return source.response.status_code, first, kinds


def test_many_watchers_at_once_share_a_snapshot_and_see_every_change(
    make_stack: Callable[..., Stack],
) -> None:
    """More watchers connecting at once than the API has Redis connections: each gets a
    snapshot, from a few reads of the line shared among them (not one each), then every
    change of a task released once all of them watch."""
    watchers = 200
    stack = make_stack(TASKLINE_MAX_STREAMS_PER_USER=str(watchers))
    stack.start()
    with stack.client() as api:
        task = submit(api, "reverse", {"text": "watched"}, not_before=FAR_AWAY)
        bearer = stack.bearer()
        # Each snapshot reads where the line's stream ends, once.
        with Commands(stack.redis, f"XREVRANGE {stack.key('line-events')} ") as snapshots:
            outcomes = watch_then_release(
                stack.url, task["id"], watchers, _watch_line, headers=bearer
            )
        assert wait_done(api, task["id"])["state"] == "SUCCESS"
    assert {(status, first) for status, first, _ in outcomes} == {(200, "snapshot")}
    kinds = {tuple(seen) for _, _, seen in outcomes}
    assert len(kinds) == 1 and kinds.pop()[-1] == "ended", kinds
    assert 1 <= snapshots.count <= watchers // 4, snapshots.count
    assert stack.redis.zcard(stack.key("streams:admin")) == 0  # every slot given back
