"""Small helpers for driving the API in tests."""

import httpx

from tests.support import PASSWORDS, TERMINAL
from tests.waiting import wait_until

__all__ = ["TERMINAL", "blocker", "read", "submit", "token", "wait_done", "wait_state"]


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
