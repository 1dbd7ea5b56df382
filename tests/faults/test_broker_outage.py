"""RabbitMQ stopped in the middle of a burst of submissions, then started again."""

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from tests.client import TERMINAL
from tests.faults.conftest import RabbitNode, ran_once_to_success
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

# A 503 must come well before a client would give up; the API waits connect_timeout (2 s)
# per attempt and retries once.
FAST_ANSWER_SECONDS = 8.0
# A stalled broker answers nothing: a publish gives up after connect_timeout (2 s).
STALLED_ANSWER_SECONDS = 3.5


@dataclass(frozen=True)
class Outcome:
    """One POST /tasks as the client saw it."""

    status: int  # 0: no HTTP answer at all (timeout, connection refused)
    seconds: float
    task_id: str | None  # a 202's task, or the task a 503 kept (sent, never confirmed)
    text: str


class Burst:
    """Submits tasks one after another from a thread until stopped, recording each outcome."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.outcomes: list[Outcome] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.stack.client() as api:
            number = 0
            while not self._stop.is_set():
                number += 1
                body = {"name": "reverse", "params": {"text": f"burst {number}"}}
                began = time.monotonic()
                try:
                    response = api.post("/tasks", json=body, timeout=15)
                except httpx.HTTPError as exc:
                    self.outcomes.append(Outcome(0, time.monotonic() - began, None, repr(exc)))
                    continue
                task_id = kept_or_accepted(response)
                self.outcomes.append(
                    Outcome(response.status_code, time.monotonic() - began, task_id, response.text)
                )
                # A steady stream rather than a flood: the worker keeps up between outages.
                self._stop.wait(0.02)

    def count(self, status: int, since: int = 0) -> int:
        """How many answers had this status, from outcome number `since` on."""
        return sum(1 for o in self.outcomes[since:] if o.status == status)

    def __enter__(self) -> "Burst":
        """Start submitting."""
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        """Stop submitting; the thread must end promptly (no request hangs)."""
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the submitting thread hangs"


def kept_or_accepted(response: httpx.Response) -> str | None:
    """The task a 202 accepted, or that a 503 says it kept (RabbitMQ may hold its message)."""
    body = response.json()
    if response.status_code == 202:
        return body["id"]
    if response.status_code == 503 and isinstance(body["detail"], dict):
        return body["detail"]["task_id"]
    return None


def listed_ids(api: httpx.Client) -> list[str]:
    """Every task id GET /tasks lists, following the cursor."""
    ids: list[str] = []
    cursor = None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = api.get("/tasks", params=params)
        assert page.status_code == 200, page.text
        ids += [item["id"] for item in page.json()["items"]]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return ids


@pytest.mark.timeout(180)
def test_broker_outage_mid_burst_loses_no_accepted_task(
    rabbit_stack: Callable[..., tuple[RabbitNode, Stack]],
) -> None:
    """Every answer is a 202 or a fast 503; every 202 runs once, and so does a task a 503
    says it kept (sent, never confirmed); no other 503 leaves a record."""
    node, stack = rabbit_stack(TASKLINE_CREATIONS_PER_MINUTE="100000")
    stack.start()
    with Burst(stack) as burst:
        wait_until(lambda: burst.count(202) >= 10, 30)
        node.stop()
        wait_until(lambda: burst.count(503) >= 3, 60)
        node.start()
        restarted = len(burst.outcomes)
        # The API reconnects by itself: accepted again without any restart of it.
        wait_until(lambda: burst.count(202, since=restarted) >= 3, 60, interval=0.1)

    every_kept_task_ran_once(stack, burst.outcomes, FAST_ANSWER_SECONDS)


@pytest.mark.timeout(180)
def test_stalled_broker_mid_burst_answers_in_time_and_loses_no_accepted_task(
    rabbit_stack: Callable[..., tuple[RabbitNode, Stack]],
) -> None:
    """RabbitMQ stalled (SIGSTOP, not a clean stop: connections stay open, nothing answers):
    every POST still answers within the publish timeout, and after SIGCONT every task a 202
    or a 503 named runs once; no other 503 leaves a record."""
    node, stack = rabbit_stack(TASKLINE_CREATIONS_PER_MINUTE="100000")
    stack.start()
    with Burst(stack) as burst:
        wait_until(lambda: burst.count(202) >= 10, 30)
        node.pause()
        stalled = len(burst.outcomes)
        wait_until(lambda: burst.count(503, since=stalled) >= 3, 60)
        node.resume()
        resumed = len(burst.outcomes)
        wait_until(lambda: burst.count(202, since=resumed) >= 3, 60, interval=0.1)
    # A publish waits connect_timeout (2 s) for RabbitMQ; Redis and the rest add little.
    every_kept_task_ran_once(stack, burst.outcomes, STALLED_ANSWER_SECONDS)


def every_kept_task_ran_once(stack: Stack, outcomes: list[Outcome], fast: float) -> None:
    """Every answer was a 202 or a 503 within `fast` seconds; every task a 202 or a 503
    named ran once to SUCCESS; nothing else was left behind."""
    odd = [o for o in outcomes if o.status not in (202, 503)]
    assert not odd, odd
    slow = [o for o in outcomes if o.seconds > fast]
    assert not slow, slow
    # A 503 that names its task kept it: RabbitMQ may hold the message, so it must run too
    # (once); any other 503 left nothing.
    accepted = [o.task_id for o in outcomes if o.task_id]
    assert len(set(accepted)) == len(accepted)

    with stack.client() as api:
        # The worker reconnects by itself too, and drains the queue.
        def all_done() -> bool:
            """Whether every accepted task has ended."""
            return all(api.get(f"/tasks/{i}").json()["state"] in TERMINAL for i in accepted)

        wait_until(all_done, 90, interval=0.5)
        # The task running when the connection dropped goes on; its requeued message waits
        # for that run (its lease, worker.hooks.lease) and is dropped: every accepted task ran once.
        for task_id in accepted:
            ran_once_to_success(stack, api, task_id, attempts=1)
        # A refused submission leaves nothing behind: the listing is exactly those tasks.
        assert sorted(listed_ids(api)) == sorted(accepted)
        assert stack.procs["api"].poll() is None and stack.procs["worker"].poll() is None
        assert api.get("/ready").status_code == 200
