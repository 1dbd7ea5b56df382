"""What the tests and the benchmarks share: ports, waits, processes, clean-up (submitting and
waiting for a task: tests.client).

One module, so that a test and a benchmark start, wait for and remove things the same way:
processes in their own session (a group that stops together), polling with a deadline instead
of sleeping, every queue and key of a run removed at its end.
"""

import contextlib
import os
import signal
import socket
import subprocess
from pathlib import Path

import redis
from kombu import Connection

from tests.waiting import wait_until

ROOT = Path(__file__).resolve().parent.parent
TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCELLED"})
# The test users' passwords (tests.processes configures them with argon2 hashes).
PASSWORDS = {"admin": "admin-password", "alice": "alice-password", "bob": "bob-password"}

__all__ = [
    "ROOT",
    "PASSWORDS",
    "TERMINAL",
    "free_port",
    "remove",
    "start_process",
    "stop_process",
    "stored_bytes",
    "wait_until",
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_process(
    args: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT
) -> subprocess.Popen:
    """Start a process in its own session (its children stop with it), output to `log`."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        return subprocess.Popen(
            args, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop_process(proc: subprocess.Popen | None, timeout: float = 20) -> None:
    """TERM the process group, KILL it if it lingers."""
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def remove(broker_url: str, redis_url: str, queues: list[str], key_pattern: str) -> int:
    """Delete the queues (and their exchanges) and the Redis keys matching `key_pattern`;
    returns how many keys went. A queue that was never declared is no error."""
    with Connection(broker_url) as connection:
        for queue in queues:
            channel = connection.channel()
            try:
                channel.queue_delete(queue)
                channel.exchange_delete(queue)
            except Exception:  # noqa: BLE001 (never declared: nothing to remove)
                connection.close()
                connection.connect()
            else:
                channel.close()
    deleted = 0
    with redis.Redis.from_url(redis_url) as client:
        batch: list[bytes] = []
        for key in client.scan_iter(match=key_pattern, count=5000):
            batch.append(key)
            if len(batch) >= 5000:
                deleted += client.unlink(*batch)
                batch.clear()
        if batch:
            deleted += client.unlink(*batch)
    return deleted


def stored_bytes(client: redis.Redis, prefix: str, task_id: str) -> int:
    """What one task costs Redis: MEMORY USAGE of every key of its own (record, events,
    history, lease, result pages, Celery's result), all of each value counted."""
    names = ("task", "events", "history", "lease", "pages", "celery-task-meta-")
    keys = [f"{prefix}{name}{'' if name.endswith('-') else ':'}{task_id}" for name in names]
    return sum(client.memory_usage(key, samples=0) or 0 for key in keys)
