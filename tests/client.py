"""Small helpers for driving the API in tests."""

import asyncio
import random
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import httpx

from tests.support import PASSWORDS, TERMINAL
from tests.waiting import wait_until

__all__ = [
    "TERMINAL",
    "at_once",
    "blocker",
    "ran_in_order",
    "read",
    "runs_by_priority_then_submission",
    "submit",
    "token",
    "wait_done",
    "wait_state",
    "watch_then_release",
]

T = TypeVar("T")


def at_once(calls: list[Callable[[], httpx.Response]]) -> list[httpx.Response]:
    """The calls sent together, each on a thread of its own, released at one moment."""
    start = threading.Barrier(len(calls))

    def send(call: Callable[[], httpx.Response]) -> httpx.Response:
        start.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(send, calls))


def submit(api: httpx.Client, name: str, params: dict, **extra: object) -> dict:
    """POST /tasks, asserting the 202 and its Location."""
    response = api.post("/tasks", json={"name": name, "params": params, **extra})
    assert response.status_code == 202, response.text
    assert response.headers["location"] == f"/tasks/{response.json()['id']}"
    return response.json()


def token(api: httpx.Client, user: str) -> str:
    """A bearer token of `user` from POST /auth/token (the client's own credentials unused)."""
    response = api.post("/auth/token", data={"username": user, "password": PASSWORDS[user]})
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


def read(api: httpx.Client, task_id: str) -> dict:
    response = api.get(f"/tasks/{task_id}")
    assert response.status_code == 200, response.text
    return response.json()


def wait_state(api: httpx.Client, task_id: str, states: set[str], timeout: float = 60) -> dict:
    """The task once it is in one of `states`."""

    def reached() -> dict | None:
        task = read(api, task_id)
        return task if task["state"] in states else None

    return wait_until(reached, timeout, interval=0.02)


def wait_done(api: httpx.Client, task_id: str, timeout: float = 60) -> dict:
    return wait_state(api, task_id, TERMINAL, timeout)


def blocker(api: httpx.Client, seconds: float = 2.0) -> dict:
    """A running task that keeps the worker busy while a test lines others up."""
    task = submit(api, "reverse", {"text": "busy"}, delay_seconds=seconds)
    wait_state(api, task["id"], {"STARTED", "PROGRESS"})
    return task


def ran_in_order(api: httpx.Client, expected: list[str]) -> list[dict]:
    """Wait for the tasks; assert they ran one at a time in this order, each once."""
    done = [wait_done(api, task_id, timeout=60) for task_id in expected]
    assert [t["state"] for t in done] == ["SUCCESS"] * len(done), done
    assert [t["attempts"] for t in done] == [1] * len(done)
    by_start = sorted(done, key=lambda t: t["started_at"])
    assert [t["id"] for t in by_start] == expected
    for before, after in zip(by_start, by_start[1:], strict=False):
        assert before["finished_at"] <= after["started_at"], "two tasks overlapped"
    return done


def runs_by_priority_then_submission(api: httpx.Client, count: int = 20) -> None:
    """Behind a running task, `count` tasks of mixed priorities: the line shows them by
    priority, then submission, and they run in that order, one at a time."""
    busy = blocker(api, 2.0)
    rng = random.Random(7)
    tasks = [
        submit(api, "reverse", {"text": str(i)}, priority=rng.choice([0, 3, 5, 9]))
        for i in range(count)
    ]
    expected = [t["id"] for t in sorted(tasks, key=lambda t: -t["priority"])]  # stable sort
    positions = {t["id"]: read(api, t["id"])["queue_position"] for t in tasks}
    assert sorted(positions, key=positions.get) == expected
    ran_in_order(api, expected)
    wait_done(api, busy["id"])


def watch_then_release(
    url: str,
    task_id: str,
    watchers: int,
    watch: Callable[[httpx.AsyncClient, str, Callable[[], None]], Awaitable[T]],
    **client_options: Any,
) -> list[T]:
    """`watchers` streams at once, each `watch(client, task_id, arrived)`, which calls
    `arrived` once it has its first event (or its refusal); the task, postponed, is brought
    back once every one of them has. Their outcomes, in order. `client_options` (auth,
    headers) go to the one client they share."""

    async def watch_all() -> list[T]:
        arrivals = 0
        everyone = asyncio.Event()

        def arrived() -> None:
            nonlocal arrivals
            arrivals += 1
            if arrivals == watchers:
                everyone.set()

        async with httpx.AsyncClient(
            base_url=url,
            timeout=60,
            limits=httpx.Limits(max_connections=watchers + 1),
            **client_options,
        ) as client:

            async def release() -> None:
                await asyncio.wait_for(everyone.wait(), 60)
                released = await client.patch(f"/tasks/{task_id}", json={"not_before": None})
                assert released.status_code == 200, released.text

            watching = [watch(client, task_id, arrived) for _ in range(watchers)]
            _, *outcomes = await asyncio.gather(release(), *watching)
            return outcomes

    return asyncio.run(watch_all())
