"""Celery's Redis result backend, with each state write in one round trip.

Celery writes a task's state in two round trips. First it reads the stored state, because a
SUCCESS is never overwritten (a lost worker's late write must not undo a result). Then it
sets and publishes the new state. Here one script does all three, atomically. The worker
writes a state at the start, at each progress report and at the end, so this halves the
round trips of Celery's part of every task. Reading is Celery's own. The script is
core/lua/store_result.lua.

What is stored is smaller too: the JSON is UTF-8, not ASCII with `\\u` escapes (12 bytes for
an emoji instead of 4), and the task's arguments are left out: `result_extended` gives Flower
the task's name and worker, but its params are the record's (one copy, in core.records). A
failure's traceback is cut to its end as the record's is (TASKLINE_TRACEBACK_BYTES).

Its client is made as every client of the main Redis is (core.redis_clients): with sentinels
configured it follows the primary through a failover, for the worker and for Flower alike.

A run of a task that says so (`folds_result_writes`) writes no STARTED and no SUCCESS of its
own: Celery writes STARTED just before the run claims its record and SUCCESS just before it
finishes it, so the backend holds each (encoded as it would have stored it) and the claim and
finish scripts store it, atomically with the record: a run costs two round trips, not four,
and a reader never sees a SUCCESS beside a running record. A claim refused stores no STARTED.
"""

from collections.abc import Callable
from functools import cached_property
from typing import Any

import redis
from celery import Celery, Task, states
from celery.backends.redis import RedisBackend
from celery.exceptions import BackendStoreError
from kombu.utils.encoding import bytes_to_str
from kombu.utils.json import dumps as json_dumps

from taskline.core import redis_clients
from taskline.core.previews import cut_to_end
from taskline.core.settings import Settings, get_settings
from taskline.core.transitions import ResultMeta, ResultWrites

# The writes a run that folds them leaves to its claim and finish scripts.
FOLDED = frozenset({states.STARTED, states.SUCCESS})

# What the URL (and so core.redis_clients) gives; the rest of Celery's options are kept.
URL_PARTS = frozenset({"host", "port", "db", "username", "password", "connection_class", "path"})


class TasklineRedisBackend(RedisBackend):
    """RedisBackend whose state writes are one atomic script each."""

    # Celery's backend has these; the Celery stubs leave them out.
    serializer: str
    compression: str | None
    expires: float | None
    failure_expires: float | None
    _MAX_STR_VALUE_SIZE: int
    _get_result_meta: Callable[..., dict[str, Any]]
    app: Celery

    connparams: dict[str, Any]

    @cached_property
    def _settings(self) -> Settings:
        settings = getattr(self.app, "settings", None)
        if not isinstance(settings, Settings):  # an app built around other settings
            settings = get_settings()
        return settings

    @cached_property
    def client(self) -> redis.Redis:
        """Celery's client, with Celery's timeouts and retries, from core.redis_clients."""
        settings = self._settings
        options = {
            name: value
            for name, value in self.connparams.items()
            if name not in URL_PARTS and not name.startswith("ssl") and value is not None
        }
        return redis_clients.client(settings, **options)

    @cached_property
    def _writes(self) -> ResultWrites:
        return ResultWrites(self.client)

    @cached_property
    def _held(self) -> dict[tuple[str, str], ResultMeta]:
        """The writes held for the run in progress in this process, by task id and state."""
        return {}

    def encode(self, data: Any) -> Any:
        """JSON as UTF-8; a lone surrogate, which UTF-8 cannot carry, keeps its escape."""
        if self.serializer != "json" or self.compression:
            return super().encode(data)
        try:
            return json_dumps(data, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return super().encode(data)

    def _store_result(
        self,
        task_id: str,
        result: Any,
        state: str,
        traceback: Any = None,
        request: Any = None,
        **kwargs: Any,
    ) -> Any:
        if traceback:  # as bounded as the record's copy (hooks.finish)
            traceback = cut_to_end(str(traceback), self._settings.traceback_bytes) or None
        meta = self._get_result_meta(
            result=result, state=state, traceback=traceback, request=request
        )
        meta["task_id"] = bytes_to_str(task_id)
        # The params live in the task's record: not a second time here.
        meta.pop("args", None)
        meta.pop("kwargs", None)
        value = self.encode(meta)
        if len(value) > self._MAX_STR_VALUE_SIZE:
            raise BackendStoreError(  # type: ignore[call-arg]  # it takes them; the stub does not
                "value too large for Redis backend", state=state, task_id=task_id
            )
        expires = self.failure_expires if state == states.FAILURE else self.expires
        if state in FOLDED and self._folds(task_id):
            if state == states.STARTED:  # a run begins: what earlier ones held is done with
                self._held.clear()
            self._held[task_id, state] = ResultMeta(value, int(expires or 0))
            return result
        self.ensure(self._store, (self.get_key_for_task(task_id), value, int(expires or 0)))
        return result

    def _folds(self, task_id: str) -> bool:
        """Whether the task running in this process is this one and folds its writes."""
        task = self.app.current_task
        return (
            task is not None
            and getattr(task, "folds_result_writes", False)
            and task.request.id == task_id
        )

    def held(self, task_id: str, state: str) -> ResultMeta | None:
        """The write of `state` held for the run of `task_id` (None: stored as usual)."""
        return self._held.get((task_id, state))

    def _store(self, key: str, value: str | bytes, expires: int) -> None:
        self._writes.store(key, value, expires)


def held(task: Task[Any, Any], state: str) -> ResultMeta | None:
    """The write of `state` Celery left to the running task's transition script, if any."""
    backend = task.backend
    task_id = task.request.id
    if not isinstance(backend, TasklineRedisBackend) or task_id is None:
        return None
    return backend.held(task_id, state)
