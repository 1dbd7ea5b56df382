"""Real Taskline processes for tests: worker, scheduler and API, isolated by queue and prefix."""

import functools
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
from argon2 import PasswordHasher

from taskline.core import redis_clients
from taskline.core.settings import Settings, lines_of
from tests.client import token
from tests.support import (
    BROKER_URL,
    PASSWORDS,
    REDIS_URL,
    ROLES,
    ROOT,
    free_port,
    remove,
    run_name,
    start_process,
    stop_process,
)
from tests.waiting import wait_until


@functools.cache
def users_setting() -> str:
    """An admin, two users and a viewer, with argon2 hashes of PASSWORDS."""
    hasher = PasswordHasher()
    return json.dumps(
        {
            name: {"password_hash": hasher.hash(password), "role": ROLES.get(name, "user")}
            for name, password in PASSWORDS.items()
        }
    )


# A task package whose code raises when imported anywhere but in a worker.
GUARDED = "tests.packages.guarded"


def isolated_env(**overrides: str) -> dict[str, str]:
    """Settings of one test stack: its own queue and Redis key prefix, named after the run."""
    tag = run_name()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLINE_")}
    env.update(
        {
            "TASKLINE_QUEUE": tag,
            "TASKLINE_KEY_PREFIX": f"{tag}:",
            "TASKLINE_BROKER_URL": BROKER_URL,
            "TASKLINE_REDIS_URL": REDIS_URL,
            "TASKLINE_PROGRESS_INTERVAL": "0.05",
            "TASKLINE_SOFT_SHUTDOWN_SECONDS": "5",
            "TASKLINE_CANCEL_GRACE_SECONDS": "1.5",
            "TASKLINE_USERS": users_setting(),
            # An author's package (named `tasks`) and a test package beside the built-ins.
            "TASKLINE_TASK_PACKAGES": f"taskline.builtins,tasks,{GUARDED}",
            "TASKLINE_TASK_PATH": str(ROOT / "examples" / "reports"),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def settings_of(env: dict[str, str]) -> Settings:
    return Settings(
        **{
            k.removeprefix("TASKLINE_").lower(): v
            for k, v in env.items()
            if k.startswith("TASKLINE_")
        }
    )


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    """Start a process in its own group, output to a log file."""
    return start_process(args, env, log)


def stop(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """TERM the process group, KILL it if it lingers."""
    stop_process(proc, timeout)


def worker_command() -> list[str]:
    # tests.stubborn adds a task that never looks for cancel requests.
    return [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "taskline.worker.celery_app",
        "worker",
        "--pool=prefork",
        "--concurrency=1",
        "--loglevel=INFO",
        "--include=tests.stubborn",
        # Named after the run: its control queue (`<hostname>.celery.pidbox`) is this run's.
        f"--hostname={run_name('worker-')}@%h",
        "--without-mingle",
        "--without-gossip",
    ]


def scheduler_command() -> list[str]:
    return [sys.executable, "-m", "taskline.worker.scheduler"]


def api_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "taskline.api.main:create_app",
        "--factory",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        # As supervisord runs it: X-Forwarded-For is the app's to judge (api.addresses).
        "--no-proxy-headers",
        # As supervisord runs it: a WebSocket peer gone silent is dropped within 20 s.
        "--ws-ping-interval",
        "10",
        "--ws-ping-timeout",
        "10",
    ]


def api_answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/health", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def wait_for_api(base_url: str, timeout: float = 30) -> None:
    """Wait until the API answers /health."""
    wait_until(lambda: api_answers(base_url), timeout, interval=0.1)


class Stack:
    """A worker, a scheduler and an API sharing one queue and key prefix; each restartable.

    `replica` is a second API process of the same stack (same settings, Redis, RabbitMQ, queue
    and prefix, a port of its own), started only when named: `start("replica")`.
    """

    def __init__(self, logs: Path, **overrides: str) -> None:
        self.logs = logs
        self.env = isolated_env(**overrides)
        self.settings = settings_of(self.env)
        # As the stack's processes reach Redis: through sentinels when they are configured.
        self.redis = redis_clients.client(self.settings, decode_responses=True)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.replica_port = free_port()
        self.replica_url = f"http://127.0.0.1:{self.replica_port}"
        self.procs: dict[str, subprocess.Popen | None] = {}

    def client(self, user: str = "admin", url: str | None = None) -> httpx.Client:
        """An HTTP client of this stack's API (or of the API at `url`, e.g. `replica_url`),
        signed in as `user` with HTTP Basic."""
        return httpx.Client(base_url=url or self.url, timeout=10, auth=(user, PASSWORDS[user]))

    def bearer(self, user: str = "admin") -> dict[str, str]:
        """An Authorization header with a fresh bearer token of `user`."""
        with httpx.Client(base_url=self.url, timeout=10) as anonymous:
            return {"Authorization": f"Bearer {token(anonymous, user)}"}

    def key(self, suffix: str) -> str:
        return f"{self.settings.key_prefix}{suffix}"

    def start(self, *names: str) -> None:
        """Start the named parts (all by default) and wait until they serve. Any name that
        starts with "worker" is one more worker of the line ("worker-2": a standby), of the
        line after a colon ("worker:slow") when TASKLINE_LINES has several."""
        names = names or ("worker", "scheduler", "api")
        commands = {
            "scheduler": scheduler_command(),
            "api": api_command(self.port),
            "replica": api_command(self.replica_port),
        }
        for name in names:
            command = worker_command() if name.startswith("worker") else commands[name]
            env = self.env
            if name.startswith("worker") and ":" in name:
                env = {**env, "TASKLINE_WORKER_LINE": name.partition(":")[2]}
            log = self.logs / f"{name.replace(':', '-')}.log"
            self.procs[name] = start(command, env, log)
        if "api" in names:
            wait_for_api(self.url)
        if "replica" in names:
            wait_for_api(self.replica_url)
        if any(name.startswith("worker") for name in names):
            wait_until(self._consumed, 60, interval=0.2)

    def _consumed(self) -> bool:
        """Every worker started consumes its line's queue (RabbitMQ counts standbys too)."""
        lines = lines_of(self.settings)
        workers = {line.name: 0 for line in lines}
        for name, proc in self.procs.items():
            if name.startswith("worker") and proc and proc.poll() is None:
                workers[name.partition(":")[2] or self.settings.worker_line or lines.main.name] += 1
        if len(lines) == 1:
            ready = httpx.get(f"{self.url}/ready", timeout=10)
            return ready.status_code == 200 and ready.json()["workers"] >= workers[lines.main.name]
        with self.client() as admin:
            shown = admin.get("/lines")
        return shown.status_code == 200 and all(
            (line["consumers"] or 0) >= workers[line["line"]] for line in shown.json()["lines"]
        )

    def stop(self, *names: str) -> None:
        for name in names or tuple(self.procs):
            stop(self.procs.pop(name, None))

    def restart(self, *names: str) -> None:
        self.stop(*names)
        self.start(*names)

    def __enter__(self) -> "Stack":
        return self

    def __exit__(self, *exc: object) -> None:
        """Closed on leaving, even when it failed to start."""
        self.close()

    def close(self) -> None:
        """Stop every process and remove the queue and every key of this stack."""
        self.stop()
        settings = self.settings
        remove(
            settings.broker_url,
            settings.redis_url,
            [line.queue for line in lines_of(settings)],
            f"{settings.key_prefix}*",
            client=self.redis,
        )
        self.redis.close()
