"""Workers report themselves in Redis: which line they consume, from which host and process,
what they run, and how loaded their host is (GET /workers; the scheduler asks whether a run's
worker lives).

At each of Celery's heartbeats (every 2 s) the worker's main process writes its report under
a key of its own that expires `worker_expiry_seconds` later, so a worker gone without a word
(kill -9, a lost host) drops out then; the index of workers (by last heartbeat) loses the
lapsed ones at every beat and expires with the last worker. One round trip per beat, nothing
per task: the time of the last message received is kept in memory until the next beat.

Which worker is active is told from the reports (taskline/api/workers.py): RabbitMQ's single
active consumer receives every message of the line and the others none, so it is the worker
that received a message last.
"""

import json
import os
import socket
from typing import Any

import psutil
import redis
from celery.signals import heartbeat_sent, task_received, worker_ready, worker_shutdown
from celery.worker import state

from taskline.core import redis_clients
from taskline.core.records import Keys, now_ms

# The filesystem whose usage a report shows.
DISK_PATH = "/"

_seen: dict[str, Any] = {}


def report() -> dict[str, Any]:
    """This worker as GET /workers shows it (the API adds whether it is active)."""
    line = _seen["app"].line
    running = [request.id for request in list(state.active_requests)]
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(DISK_PATH)
    return {
        "node": _seen["node"],
        "queue": line.queue,
        "line": line.name,
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "started_ms": _seen["started_ms"],
        "heartbeat_ms": now_ms(),
        "received_ms": _seen.get("received_ms"),
        "task_id": running[0] if running else None,
        # Since the previous call: the load over the last heartbeat interval.
        "cpu_percent": psutil.cpu_percent(interval=None),
        "memory": {"total": memory.total, "used": memory.used, "percent": memory.percent},
        "disk": {"path": DISK_PATH, **{k: getattr(disk, k) for k in ("total", "used", "percent")}},
    }


def _mark(present: bool) -> None:
    if "app" not in _seen:
        return  # not ready yet
    settings = _seen["app"].settings
    keys = Keys(settings.key_prefix)
    expiry_ms = round(settings.worker_expiry_seconds * 1000)
    node = _seen["node"]
    try:
        with _seen["redis"].pipeline(transaction=False) as pipe:
            if present:
                now = now_ms()
                pipe.set(keys.worker(node), json.dumps(report()), px=expiry_ms)
                pipe.zadd(keys.workers, {node: now})
                pipe.zremrangebyscore(keys.workers, "-inf", now - expiry_ms)
                pipe.pexpire(keys.workers, expiry_ms)
            else:
                pipe.delete(keys.worker(node))
                pipe.zrem(keys.workers, node)
            pipe.execute()
    except redis.RedisError:
        pass  # presence is advisory; the next heartbeat tries again


@worker_ready.connect
def _ready(sender: Any, **_: Any) -> None:
    settings = sender.app.settings
    psutil.cpu_percent(interval=None)  # the first call only starts the measure
    _seen.update(
        app=sender.app,
        node=sender.hostname,
        started_ms=now_ms(),
        redis=redis_clients.client(
            settings, socket_timeout=2, socket_connect_timeout=settings.connect_timeout
        ),
    )
    _mark(True)


@task_received.connect
def _received(**_: Any) -> None:
    """Only the line's active consumer receives messages."""
    _seen["received_ms"] = now_ms()


@heartbeat_sent.connect
def _beat(sender: Any, **_: Any) -> None:
    _mark(True)


@worker_shutdown.connect
def _gone(sender: Any, **_: Any) -> None:
    _mark(False)
