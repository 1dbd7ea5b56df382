"""The worker's side of the record, on the embedded worker: turns, fencing, refusals.

The test plays the API (records through core.transitions, turns published by name) and the
embedded worker runs the real task code against them.
"""

import hashlib
import json
import subprocess
import threading
import uuid

import pytest

from taskline.core import task_metrics
from taskline.core.records import State, now_ms
from taskline.core.transitions import Claimed, Created, Edited, source
from taskline.worker.scheduler import Scheduler
from tests.embedded import Embedded
from tests.waiting import wait_until

pytestmark = pytest.mark.integration


def create(embedded: Embedded, name: str, params: dict) -> Created:
    task_id = str(uuid.uuid4())
    created = embedded.transitions.create(
        task_id, name, params, 5, "alice", None, 100, None, 1000, None
    )
    assert isinstance(created, Created)
    return created


def publish(embedded: Embedded, created: Created, turn: int) -> None:
    record = created.snapshot.record
    embedded.publisher.publish(record.id, record.name, record.params, 5, turn)


def field(embedded: Embedded, task_id: str, name: str) -> str | None:
    return embedded.redis.hget(embedded.keys.task(task_id), name)


def ended(embedded: Embedded, task_id: str) -> str | None:
    state = field(embedded, task_id, "state")
    return state if state in ("SUCCESS", "FAILURE", "CANCELLED") else None


def test_a_superseded_turn_is_dropped_and_the_current_one_runs_once(embedded: Embedded) -> None:
    created = create(embedded, "reverse", {"text": "abc"})
    edited = embedded.transitions.edit(
        created.snapshot.record.id, None, {"text": "xyz"}, 9, "keep", None, {}, None
    )
    assert edited == Edited(turn=2)
    task_id = created.snapshot.record.id
    publish(embedded, created, 1)  # the message of the first turn, still in the queue
    publish(embedded, created, 2)
    assert wait_until(lambda: ended(embedded, task_id), 20) == "SUCCESS"
    assert field(embedded, task_id, "attempts") == "1"
    # The edit made while it waited is what ran.
    assert embedded.app.AsyncResult(task_id).get(timeout=5) == "zyx"


def test_a_run_replaced_by_another_attempt_stops_and_writes_nothing_more(
    embedded: Embedded,
) -> None:
    """A stalled run whose lease lapsed wakes up to find another attempt holds its task."""
    created = create(embedded, "leibniz_pi", {"digits": 3, "delay_seconds": 5})
    task_id = created.snapshot.record.id
    publish(embedded, created, created.turn)
    wait_until(lambda: field(embedded, task_id, "progress"), 10)

    # Another worker takes the task over, as after a lapsed lease.
    embedded.redis.delete(embedded.keys.lease(task_id))
    successor = embedded.transitions.claim(
        task_id,
        str(created.turn),
        True,
        "leibniz_pi",
        {},
        "other@host:1",
        10_000,
        False,
        forget_ms=now_ms() + 60_000,
    )
    assert isinstance(successor, Claimed) and successor.token == 2
    progress = field(embedded, task_id, "progress")
    events = embedded.redis.xlen(embedded.keys.events(task_id))

    # The embedded run's next write is refused: it stops, and the record stays the
    # successor's (no progress, no end written by the stale run).
    def stopped() -> bool:
        return embedded.app.AsyncResult(task_id).state == "FAILURE"

    wait_until(stopped, 10)
    assert field(embedded, task_id, "state") == "STARTED"
    assert field(embedded, task_id, "runner") == "other@host:1"
    assert field(embedded, task_id, "progress") == progress == ""
    assert embedded.redis.xlen(embedded.keys.events(task_id)) == events
    forget = now_ms() + 60_000
    assert embedded.transitions.finish(task_id, State.SUCCESS, None, forget, token=2)


def test_a_retried_failure_waits_postponed_and_celery_records_a_retry_not_a_failure(
    embedded: Embedded,
) -> None:
    """`word_report` retries FlakySourceError (3 attempts, 0.5 s of backoff): its first run
    fails, the task waits SCHEDULED, Celery's result says RETRY (GET /result reads no
    FAILURE), and the scheduler's release gives the next attempt a turn the worker claims."""
    created = create(embedded, "word_report", {"text": "a b a", "fail_attempts": 1})
    task_id = created.snapshot.record.id
    publish(embedded, created, created.turn)
    result = embedded.app.AsyncResult(task_id)
    assert wait_until(lambda: result.state == "RETRY", 20)
    record = embedded.redis.hgetall(embedded.keys.task(task_id))
    assert record["state"] == "SCHEDULED" and record["attempts"] == "1"
    (failure,) = json.loads(record["errors"])
    assert failure["type"] == "FlakySourceError" and failure["attempt"] == 1
    assert failure["message"] == "attempt 1 fails on purpose"
    due = embedded.redis.zscore(embedded.keys.scheduled, task_id)
    assert due is not None and due <= now_ms() + 500  # at most the first backoff away

    scheduler = Scheduler(embedded.settings)
    try:
        assert wait_until(scheduler.release_due, 5) == 1
    finally:
        scheduler.publisher.close()
    assert wait_until(lambda: ended(embedded, task_id), 20) == "SUCCESS"
    assert field(embedded, task_id, "attempts") == "2"
    assert result.get(timeout=5) == {"lines": 1, "words": 3, "top": [["a", 2], ["b", 1]]}


def test_a_run_stores_celerys_started_and_success_with_its_claim_and_finish(
    embedded: Embedded,
) -> None:
    """A trivial run costs the worker two scripts on Redis: its claim, which stores Celery's
    STARTED with it, and its finish, which stores its SUCCESS and counts the end in the
    ended-task figures; the result backend sends no write of its own, and the run sends
    nothing else of the deployment's (Redis's MONITOR lists every command, a script's own
    as sent by `lua`). What Celery reads back is its own meta of the run: state, result,
    task name and worker."""
    created = create(embedded, "reverse", {"text": "abc"})
    task_id = created.snapshot.record.id
    shas = {
        hashlib.sha1(source(name).encode()).hexdigest(): name
        for name in ("claim", "finish", "store_result")
    }
    url, prefix = embedded.settings.redis_url, embedded.settings.key_prefix
    monitor = subprocess.Popen(
        ["redis-cli", "-u", url, "monitor"], stdout=subprocess.PIPE, text=True
    )
    sent: list[str] = []
    # Every command of the deployment's keys a client sent (not a script's own): its
    # connection, its name (a script's by its SHA) and the whole line.
    commands: list[tuple[str, str, str]] = []

    def read() -> None:
        assert monitor.stdout is not None
        for line in monitor.stdout:
            words = line.split('"')
            if len(words) > 3 and words[1] == "EVALSHA" and task_id in line:
                sent.append(shas.get(words[3], words[3]))
            client = line.partition("]")[0].rpartition(" ")[2]
            if len(words) > 1 and client != "lua" and prefix in line:
                name = shas.get(words[3], words[1]) if words[1] == "EVALSHA" else words[1]
                commands.append((client, name, line))

    reader = threading.Thread(target=read, daemon=True)
    try:
        assert monitor.stdout is not None and monitor.stdout.readline().strip() == "OK"
        reader.start()
        publish(embedded, created, created.turn)
        assert wait_until(lambda: ended(embedded, task_id), 20) == "SUCCESS"
        wait_until(lambda: "finish" in sent, 10, what="the finish script in MONITOR's output")
    finally:
        monitor.terminate()
        monitor.wait(10)
        if reader.ident is not None:
            reader.join(10)
        if monitor.stdout is not None:
            monitor.stdout.close()
    assert [name for name in sent if name in shas.values()] == ["claim", "finish"]
    # The run's connections send nothing else of the deployment's from its claim on (no
    # increment of the figures after the finish), and no client writes the figures: the
    # finish script counts the end.
    runs = {client for client, name, _ in commands if name in ("claim", "finish")}
    claimed = next(i for i, (_, name, _) in enumerate(commands) if name == "claim")
    by_run = [name for client, name, _ in commands[claimed:] if client in runs]
    assert by_run == ["claim", "finish"], commands
    figures = task_metrics.key(prefix)
    scripts = shas.values()
    assert not [line for _, name, line in commands if figures in line and name not in scripts]
    assert embedded.redis.hget(figures, "ended|reverse|SUCCESS")
    result = embedded.app.AsyncResult(task_id)
    assert (result.state, result.get(timeout=5)) == ("SUCCESS", "cba")
    runner = field(embedded, task_id, "runner") or ""
    assert result.name == "reverse" and result.worker and runner.startswith(f"{result.worker}:")
