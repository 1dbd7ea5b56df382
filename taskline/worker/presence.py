"""Workers announce themselves in Redis, so the API can say who is consuming the line."""

from typing import Any

import redis
from celery.signals import heartbeat_sent, worker_ready, worker_shutdown

from taskline.core import redis_clients
from taskline.core.records import Keys, now_ms

_seen: dict[str, Any] = {}


def _mark(present: bool) -> None:
    if not _seen:
        return
    key = Keys(_seen["app"].settings.key_prefix).workers
    try:
        if present:
            _seen["redis"].zadd(key, {_seen["hostname"]: now_ms()})
        else:
            _seen["redis"].zrem(key, _seen["hostname"])
    except redis.RedisError:
        pass  # presence is advisory; the next heartbeat tries again


@worker_ready.connect
def _ready(sender: Any, **_: Any) -> None:
    settings = sender.app.settings
    _seen.update(
        app=sender.app,
        hostname=sender.hostname,
        redis=redis_clients.client(settings, socket_timeout=2),
    )
    _mark(True)


@heartbeat_sent.connect
def _beat(sender: Any, **_: Any) -> None:
    _mark(True)


@worker_shutdown.connect
def _gone(sender: Any, **_: Any) -> None:
    _mark(False)
