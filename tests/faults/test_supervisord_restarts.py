"""supervisord brings crashed processes back, and its own stop requeues the running task."""

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psutil
import pytest
import redis

from taskline.worker.celery_app import create_celery_app
from tests.client import TERMINAL, submit, wait_state
from tests.faults.conftest import tail
from tests.processes import (
    PASSWORDS,
    free_port,
    isolated_env,
    settings_of,
    start,
    stop,
)
from tests.support import ROOT
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

BIN = Path(sys.executable).parent
PROGRAMS = ("taskline:api", "taskline:worker", "taskline:scheduler", "taskline:flower")


def example_env() -> dict[str, str]:
    """.env.example as a dict, as `make run` exports it."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@dataclass
class Supervised:
    """supervisord running the stack from supervisord.conf, with our own ports and queue."""

    env: dict[str, str]
    run_dir: Path
    proc: subprocess.Popen | None = None

    @property
    def api_url(self) -> str:
        """The supervised API's base URL."""
        return f"http://127.0.0.1:{self.env['TASKLINE_API_PORT']}"

    def client(self) -> httpx.Client:
        """An HTTP client of the supervised API, signed in as the admin."""
        return httpx.Client(base_url=self.api_url, timeout=10, auth=("admin", PASSWORDS["admin"]))

    def start(self) -> None:
        """Start supervisord and wait until every program runs and a worker consumes."""
        self.proc = start(
            [str(BIN / "supervisord"), "-c", "supervisord.conf"],
            self.env,
            self.run_dir / "supervisord.out",
        )
        wait_until(self.all_running, 90, interval=0.5)
        wait_until(lambda: self.answers("/ready"), 60, interval=0.2)

    def ctl(self, *args: str) -> str:
        """Run supervisorctl against this supervisord's console."""
        url = f"http://127.0.0.1:{self.env['TASKLINE_CONSOLE_PORT']}"
        auth = [
            "-u",
            self.env["TASKLINE_CONSOLE_USER"],
            "-p",
            self.env["TASKLINE_CONSOLE_PASSWORD"],
        ]
        result = subprocess.run(
            [str(BIN / "supervisorctl"), "-s", url, *auth, *args],
            capture_output=True,
            text=True,
            env=self.env,
            cwd=ROOT,
            timeout=30,
            check=False,
        )
        return result.stdout

    def states(self) -> dict[str, str]:
        """Program name → supervisord state, as `supervisorctl status` shows them."""
        lines = self.ctl("status").splitlines()
        return dict(line.split()[:2] for line in lines if len(line.split()) >= 2)

    def all_running(self) -> bool:
        """Whether every Taskline program is RUNNING."""
        states = self.states()
        return all(states.get(name) == "RUNNING" for name in PROGRAMS)

    def pid(self, program: str) -> int:
        """The program's pid, 0 while it does not run."""
        answer = self.ctl("pid", program).strip()
        return int(answer) if answer.isdigit() else 0

    def answers(self, path: str) -> bool:
        """Whether the API answers 200 on `path` (it may be down or restarting)."""
        try:
            with self.client() as api:
                return api.get(path, timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    def restarted(self, program: str, old_pid: int) -> bool:
        """Whether supervisord runs the program again, under a new pid."""
        return self.states().get(program) == "RUNNING" and self.pid(program) not in (0, old_pid)

    def stop(self) -> None:
        """SIGTERM to supervisord, which stops its programs; SIGKILL if it lingers."""
        stop(self.proc, timeout=90)

    def record(self, task_id: str) -> dict[str, str]:
        """The task's record, read from Redis directly (the API may be down)."""
        with redis.Redis.from_url(self.env["TASKLINE_REDIS_URL"], decode_responses=True) as r:
            return r.hgetall(f"{self.env['TASKLINE_KEY_PREFIX']}task:{task_id}")

    def states_of(self, task_id: str) -> list[str]:
        """The states the task went through (its event stream, progress left out)."""
        with redis.Redis.from_url(self.env["TASKLINE_REDIS_URL"], decode_responses=True) as r:
            entries = r.xrange(f"{self.env['TASKLINE_KEY_PREFIX']}events:{task_id}")
        return [fields["state"] for _, fields in entries if fields["state"] != "PROGRESS"]


@pytest.fixture
def supervised(tmp_path: Path) -> Iterator[Supervised]:
    """The supervised stack; stopped, its queue and its Redis keys removed afterwards."""
    env = {**example_env(), **isolated_env(TASKLINE_SOFT_SHUTDOWN_SECONDS="3")}
    env.update(
        {
            "TASKLINE_RUN_DIR": str(tmp_path),
            "TASKLINE_PYTHON": sys.executable,
            "TASKLINE_API_PORT": str(free_port()),
            "TASKLINE_FLOWER_PORT": str(free_port()),
            "TASKLINE_CONSOLE_PORT": str(free_port()),
        }
    )
    stack = Supervised(env, tmp_path)
    try:
        yield stack
    finally:
        stack.stop()
        settings = settings_of(env)
        app = create_celery_app(settings, with_backend=False)
        with app.connection_for_write() as conn:
            channel = conn.channel()
            channel.queue_delete(settings.queue)
            channel.exchange_delete(settings.queue)
        app.close()
        with redis.Redis.from_url(settings.redis_url) as client:
            keys = list(client.scan_iter(match=f"{settings.key_prefix}*", count=1000))
            if keys:
                client.delete(*keys)


@pytest.mark.timeout(240)
def test_supervisord_restarts_crashed_processes_and_requeues_on_stop(
    supervised: Supervised,
) -> None:
    """kill -9 of the API or the worker: back RUNNING; SIGTERM to supervisord: task requeued."""
    supervised.start()
    with supervised.client() as api:
        # The API crashes: supervisord starts it again and it answers.
        old_api = supervised.pid("taskline:api")
        os.kill(old_api, signal.SIGKILL)
        wait_until(lambda: supervised.restarted("taskline:api", old_api), 30, interval=0.2)
        wait_until(lambda: supervised.answers("/health"), 30, interval=0.1)

        # The worker's main process crashes: back RUNNING, its orphaned pool child goes away,
        # and a new task runs.
        old_worker = supervised.pid("taskline:worker")
        orphans = psutil.Process(old_worker).children()
        os.kill(old_worker, signal.SIGKILL)
        wait_until(lambda: supervised.restarted("taskline:worker", old_worker), 30, interval=0.2)
        wait_until(lambda: supervised.answers("/ready"), 60, interval=0.2)
        task = submit(api, "reverse", {"text": "after the crash"})
        done = wait_state(api, task["id"], TERMINAL, timeout=30)
        assert done["result"] == "hsarc eht retfa", done
        _, alive = psutil.wait_procs(orphans, timeout=15)
        assert not alive, alive

        # supervisord itself is stopped while a task runs that cannot finish within the
        # worker's soft shutdown: the shutdown ends the run, and its unacknowledged message
        # goes back to the queue, to run again once the worker is back.
        soft = float(supervised.env["TASKLINE_SOFT_SHUTDOWN_SECONDS"])
        delay = soft + 7
        running = submit(api, "reverse", {"text": "interrupted"}, delay_seconds=delay)
        wait_state(api, running["id"], {"STARTED", "PROGRESS"}, timeout=30)
        worker = psutil.Process(supervised.pid("taskline:worker"))
        programs = [psutil.Process(supervised.pid(name)) for name in PROGRAMS]
        programs += worker.children()
        before = supervised.record(running["id"])
        # Running when the stop begins: its first attempt, in the worker's pool child, with
        # more of its delay left than the soft shutdown lasts.
        assert before["state"] == "STARTED" and before["attempts"] == "1", before
        pid = int(before["runner"].rpartition(":")[2])
        assert pid in {child.pid for child in worker.children()}, (before, worker.children())
        elapsed = datetime.now(UTC) - datetime.fromisoformat(before["started_at"])
        assert elapsed < timedelta(seconds=delay - soft - 2), (elapsed, before)
        supervised.proc.send_signal(signal.SIGTERM)
        supervised.proc.wait(90)
        _, alive = psutil.wait_procs(programs, timeout=10)
        assert not alive, alive
        # Not finished, not lost: still its first attempt in the record, to be redelivered.
        after = supervised.record(running["id"])
        assert after["state"] == "STARTED" and after["attempts"] == "1", after
        assert supervised.states_of(running["id"]).count("STARTED") == 1

        supervised.start()
        done = wait_state(api, running["id"], TERMINAL, timeout=90)
        assert done["state"] == "SUCCESS", (done, tail(supervised.run_dir / "worker.log"))
        assert done["result"] == "detpurretni"
        # The requeued message ran it again: a second attempt, to its end, once.
        assert done["attempts"] == 2, done
        seen = supervised.states_of(running["id"])
        assert seen.count("STARTED") == 2 and seen.count("SUCCESS") == 1, seen
        assert seen[-1] == "SUCCESS" and not {"FAILURE", "CANCELLED"} & set(seen), seen
