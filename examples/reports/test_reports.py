"""The example package's own tests: its implementation on pytest-celery's embedded worker
(tests.embedded).

The test plays the API: it records a task with Taskline's transitions and publishes its
turn by name; the embedded worker (the real consumer, in this process) runs `word_report`.
"""

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from taskline.core.records import now_ms
from taskline.core.transitions import Cancelling, Created
from tests.embedded import Embedded, embedded_worker
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


class Line:
    """What a test needs: the transitions, the publisher, and the records' Redis."""

    def __init__(self, worker: Embedded) -> None:
        self.app, self.redis, self.publisher = worker.app, worker.redis, worker.publisher
        self.transitions = worker.transitions

    def submit(self, params: dict[str, Any]) -> str:
        task_id = str(uuid.uuid4())
        created = self.transitions.create(
            task_id, "word_report", params, 5, "alice", None, 100, None, 1000, None
        )
        assert isinstance(created, Created) and created.turn
        self.publisher.publish(task_id, "word_report", params, 5, created.turn)
        return task_id

    def record(self, task_id: str) -> dict[str, str]:
        return self.redis.hgetall(self.transitions.keys.task(task_id))

    def ended(self, task_id: str) -> dict[str, str] | None:
        record = self.record(task_id)
        return record if record.get("state") in ("SUCCESS", "FAILURE", "CANCELLED") else None


@pytest.fixture(scope="module")
def line() -> Iterator[Line]:
    with embedded_worker(TASKLINE_TASK_PACKAGES="taskline.builtins,tasks") as worker:
        yield Line(worker)


def test_a_report_counts_words_and_reports_its_progress(line: Line) -> None:
    text = "\n".join(["the cat", "the dog", "a cat"] * 20)
    task_id = line.submit({"text": text, "top": 2, "delay_seconds": 1})
    seen: list[float] = []

    def done() -> dict[str, str] | None:
        progress = line.record(task_id).get("progress")
        if progress:
            seen.append(json.loads(progress)["percent"])
        return line.ended(task_id)

    record = wait_until(done, 30, interval=0.05)
    assert record["state"] == "SUCCESS", record
    result = line.app.AsyncResult(task_id).get(timeout=5)
    assert result == {"lines": 60, "words": 120, "top": [["the", 40], ["cat", 40]]}
    assert len(set(seen)) >= 3 and seen == sorted(seen)  # rising progress while it ran
    assert json.loads(record["progress"])["intermediate"] == 120  # the words counted


def test_a_cancel_stops_a_report_at_its_next_checkpoint(line: Line) -> None:
    task_id = line.submit({"text": "word\n" * 100, "delay_seconds": 60})
    wait_until(lambda: line.record(task_id).get("progress"), 20, interval=0.05)
    asked = now_ms()
    outcome = line.transitions.cancel(task_id, asked + 30_000, asked + 3_600_000)
    assert outcome == Cancelling()
    record = wait_until(lambda: line.ended(task_id), 10, interval=0.05)
    assert record["state"] == "CANCELLED"
    assert json.loads(record["progress"])["percent"] < 100
