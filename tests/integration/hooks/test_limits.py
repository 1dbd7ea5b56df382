"""hooks.limits: the soft limit a run sees, and the end of a run the main process killed,
recorded once its (real) child process is gone, and only for a run of this worker; counted
once (core.task_metrics), by the script that records it, or not at all with metrics off."""

import logging
import subprocess
import sys
import threading
from collections.abc import Iterator

import pytest

from taskline.builtins import REVERSE
from taskline.core import task_metrics
from taskline.core.records import State
from taskline.core.registry import limits
from taskline.core.transitions import Claimed
from taskline.declaring import MAX_DELAY_SECONDS
from taskline.worker.hooks.claim import claim
from taskline.worker.hooks.limits import finish_when_child_gone, soft_limit
from tests.integration.hooks.conftest import Worker

pytestmark = pytest.mark.integration

NODE = "worker@host"
CANCELLED = (State.CANCELLED, {"type": "Cancelled", "message": "stopped after the grace"})


@pytest.fixture
def child() -> Iterator[subprocess.Popen[bytes]]:
    """A process playing the run's pool child."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    proc.kill()
    proc.wait(10)


def running_in(worker: Worker, pid: int) -> str:
    created = worker.create()
    run = worker.run(created.snapshot.record.id, runner=f"{NODE}:{pid}")
    assert isinstance(claim(run, str(created.turn), False, {}), Claimed)
    return run.task_id


def test_the_soft_limit_is_the_declared_work_plus_the_longest_delay() -> None:
    assert soft_limit(REVERSE, None) == limits(REVERSE)[0] == 60 + MAX_DELAY_SECONDS
    assert soft_limit(None, 12) == 12.0  # a task registered another way: its own
    assert soft_limit(None, None) == 0.0


@pytest.mark.parametrize("metrics", [True, False])
def test_a_killed_run_ends_once_its_child_is_gone(
    worker: Worker, child: subprocess.Popen[bytes], metrics: bool
) -> None:
    task_id = running_in(worker, child.pid)
    log = logging.getLogger("tests.hooks")
    figures = task_metrics.key(worker.keys.prefix)
    worker.client.delete(figures)

    def finish() -> threading.Thread:
        return finish_when_child_gone(
            worker.client, worker.transitions, task_id, CANCELLED,
            node=NODE, retention_seconds=60, log=log, metrics=metrics,
        )  # fmt: skip

    ending = finish()
    assert ending.is_alive() and worker.field(task_id, "state") == "STARTED"
    child.kill()  # the worker's main process kills the child
    ending.join(10)
    assert not ending.is_alive()
    assert worker.field(task_id, "state") == "CANCELLED"
    finish().join(10)  # told twice: the end is recorded, and counted, once
    counted = {f"ended|{REVERSE.name}|CANCELLED": "1"} if metrics else {}
    assert worker.client.hgetall(figures) == counted


def test_a_child_that_outlives_the_wait_or_a_run_of_another_worker_is_left_alone(
    worker: Worker, child: subprocess.Popen[bytes], caplog: pytest.LogCaptureFixture
) -> None:
    task_id = running_in(worker, child.pid)
    log = logging.getLogger("tests.hooks")
    ending = finish_when_child_gone(
        worker.client, worker.transitions, task_id, CANCELLED,
        node=NODE, retention_seconds=60, log=log, wait=0.2,
    )  # fmt: skip
    ending.join(10)
    assert "outlived its stop" in caplog.text
    assert worker.field(task_id, "state") == "STARTED"

    child.kill()
    child.wait(10)
    ending = finish_when_child_gone(
        worker.client, worker.transitions, task_id, CANCELLED,
        node="another@host", retention_seconds=60, log=log,
    )  # fmt: skip
    ending.join(10)
    assert worker.field(task_id, "state") == "STARTED"  # another worker's run: not ours
