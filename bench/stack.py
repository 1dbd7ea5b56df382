"""The suite's own Taskline deployments: queue names and Redis key prefixes nobody else uses.

Every process gets a TASKLINE_* environment built here (nothing inherited but the broker and
Redis URLs), raised creation limits, and one admin user whose argon2 hash is made per run.
`cleanup` deletes the queues, exchanges and keys a run made, whatever state it stopped in.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
from argon2 import PasswordHasher
from kombu import Connection

from bench import procs
from taskline.core.settings import Settings
from tests.support import remove

USER = "bench"
BROKER_URL = os.environ.get("TASKLINE_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("TASKLINE_REDIS_URL", "redis://127.0.0.1:6379/0")
FLOWER_USER = "bench"


@dataclass
class Deployment:
    """One queue + key prefix, and how to start Taskline's processes on it."""

    name: str
    tag: str
    password: str
    users: str
    logs: Path

    @property
    def queue(self) -> str:
        return f"bench-{self.tag}-{self.name}"

    @property
    def prefix(self) -> str:
        return f"bench-{self.tag}-{self.name}:"

    def env(self, **extra: str) -> dict[str, str]:
        """The process environment: this deployment's settings, limits raised for load."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLINE_")}
        env.update(
            {
                "TASKLINE_ENV": "development",
                "TASKLINE_BROKER_URL": BROKER_URL,
                "TASKLINE_REDIS_URL": REDIS_URL,
                "TASKLINE_QUEUE": self.queue,
                "TASKLINE_KEY_PREFIX": self.prefix,
                "TASKLINE_USERS": self.users,
                "TASKLINE_CREATIONS_PER_MINUTE": str(10**9),
                "TASKLINE_MAX_WAITING_PER_USER": str(10**9),
                "TASKLINE_MAX_STREAMS_PER_USER": str(10**9),
                "TASKLINE_FLOWER_USER": FLOWER_USER,
                "TASKLINE_FLOWER_PASSWORD": self.password,
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(extra)
        return env

    def settings(self) -> Settings:
        """The Settings the processes of this deployment read from their environment."""
        return Settings(
            broker_url=BROKER_URL, redis_url=REDIS_URL, queue=self.queue, key_prefix=self.prefix
        )

    def start_api(
        self, port: int, workers: int = 1, name: str = "api", **env: str
    ) -> subprocess.Popen:
        """uvicorn as supervisord runs it (httptools, uvloop), 1 process or --workers N;
        `env`: settings of this API's own (e.g. TASKLINE_ACCESS_LOG)."""
        args = [procs.PY, "-m", "uvicorn", "taskline.api.main:create_app", "--factory"]
        args += [
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--no-proxy-headers",
        ]
        args += ["--log-level", "warning"]
        if workers > 1:
            args += ["--workers", str(workers)]
        proc = procs.start(f"{self.name}-{name}", args, self.env(**env), self.logs)
        procs.wait_http(f"http://127.0.0.1:{port}/health", proc)
        return proc

    @property
    def worker_hostname(self) -> str:
        return self.node()

    def node(self, suffix: str = "") -> str:
        """A worker's Celery node name; `suffix` tells apart several workers on one line."""
        name = f"{self.name}-{suffix}" if suffix else self.name
        return f"bench-{self.tag}-{name}@{socket.gethostname()}"

    def start_worker(
        self, app: str = "taskline.worker.celery_app", suffix: str = "", **env: str
    ) -> subprocess.Popen:
        """The worker as supervisord runs it: prefork, one child (settings from the app);
        with a `suffix`, one more worker on the line under a node name of its own."""
        args = [procs.PY, "-m", "celery", "-A", app, "worker", "--pool=prefork"]
        args += ["--concurrency=1", "--loglevel=WARNING", f"--hostname={self.node(suffix)}"]
        args += ["--without-mingle", "--without-gossip"]
        log = f"{self.name}-worker-{suffix}" if suffix else f"{self.name}-worker"
        return procs.start(log, args, self.env(**env), self.logs)

    def start_flower(self, port: int) -> subprocess.Popen:
        """Flower on this deployment's app, with basic auth as under supervisord."""
        args = [procs.PY, "-m", "celery", "-A", "bench.flower_app", "flower"]
        args += ["--address=127.0.0.1", f"--port={port}", "--logging=warning"]
        env = self.env(FLOWER_BASIC_AUTH=f"{FLOWER_USER}:{self.password}")
        proc = procs.start(f"{self.name}-flower", args, env, self.logs)
        procs.wait_http(f"http://127.0.0.1:{port}/healthcheck", proc)
        return proc

    def token(self, base_url: str) -> str:
        """A bearer token: load scripts then pay no argon2 verify per connection."""
        response = httpx.post(
            f"{base_url}/auth/token",
            data={"username": USER, "password": self.password},
            timeout=10,
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def purge(self) -> int:
        """Drop the messages waiting in this deployment's queue."""
        with Connection(BROKER_URL) as conn:
            try:
                return conn.default_channel.queue_purge(self.queue) or 0
            except Exception:  # noqa: BLE001 (a queue never declared has nothing to purge)
                return 0


def deployments(names: list[str], logs: Path) -> dict[str, Deployment]:
    """Deployments sharing one run tag and one freshly hashed admin user."""
    tag = secrets.token_hex(3)
    password = secrets.token_urlsafe(12)
    users = json.dumps({USER: {"password_hash": PasswordHasher().hash(password), "role": "admin"}})
    return {name: Deployment(name, tag, password, users, logs) for name in names}


def cleanup(tag: str) -> dict[str, int]:
    """Delete every queue, exchange and Redis key of a run tag."""
    names = ("main", "bare", "monitored", "list1k", "list100k", "search", "lines", "lines.serials")
    queues = [f"bench-{tag}-{name}" for name in names]
    deleted = remove(BROKER_URL, REDIS_URL, queues, f"bench-{tag}-*")
    return {"queues": len(queues), "keys": deleted}
