"""The base class of every Taskline task: record checks, lifecycle, progress, cancellation.

Before running a message the task claims its record; a message for an unknown, cancelled,
finished or superseded task is skipped without running (`Ignore`), so control over waiting
tasks never depends on touching RabbitMQ or on Celery's in-memory revoke list. The params come
from the record, so an edit made while the task waited is the one that runs.

A run holds a lease on its task while it is alive. A redelivered message of a task whose run
still holds it (RabbitMQ's consumer_timeout or a lost connection requeued the message of a run
that goes on, perhaps to a standby worker) holds its turn until that run ends, then is
dropped; only a lapsed lease means the run died, and the task runs again.
"""

import functools
import json
import os
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar

import redis
from celery import Task
from celery.exceptions import Ignore
from celery.utils.log import get_task_logger
from pydantic import ValidationError
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from worker.catalog import CATALOG, TaskParams
from worker.records import TURN_HEADER, Keys, State, dumps, now_iso, now_ms
from worker.transitions import Transitions

# How often a running task looks for a cancel request (seconds).
CANCEL_CHECK_INTERVAL = 0.1
# A run's lease lapses this long after its pool child stopped renewing it (died); renewed by
# a thread every LEASE_RENEW_SECONDS, so a few missed beats (a busy host) do not lapse it.
LEASE_MS = 10_000
LEASE_RENEW_SECONDS = 2.0
# How often a redelivery held by a live run looks at the record again (seconds).
HOLD_POLL_SECONDS = 0.5

logger = get_task_logger(__name__)


class TaskCancelledError(Exception):
    """Raised inside a task whose cancellation was requested."""


class _LeaseKeeper:
    """One thread per process renews the lease of the run in progress, every few seconds.

    A thread, so that a task body busy computing still renews; one per process rather than
    one per run, so that starting a run costs no thread.
    """

    def __init__(self) -> None:
        self._held: dict[str, Callable[[], Any]] = {}
        self._pid = 0

    def hold(self, task_id: str, renew: Callable[[], Any]) -> None:
        if self._pid != os.getpid():  # first run in this (forked) process
            self._pid = os.getpid()
            self._held = {}
            threading.Thread(target=self._renew_forever, daemon=True).start()
        self._held[task_id] = renew

    def release(self, task_id: str) -> None:
        self._held.pop(task_id, None)

    def _renew_forever(self) -> None:
        while True:
            time.sleep(LEASE_RENEW_SECONDS)
            for renew in list(self._held.values()):
                try:
                    renew()
                except redis.RedisError:
                    pass  # the lease outlives a few missed beats; the next one tries again


_leases = _LeaseKeeper()


class TasklineTask(Task):
    """Runs a catalogue task against its Redis record."""

    typing = False  # params are validated by the catalogue model instead
    throws = (TaskCancelledError,)  # an expected outcome: logged without a traceback
    _redis: ClassVar[redis.Redis | None] = None
    _scripts: ClassVar[Transitions | None] = None
    _redis_pid: ClassVar[int] = 0

    @property
    def store(self) -> redis.Redis:
        """A Redis client of this process (pool children must not share their parent's)."""
        cls = type(self)
        if cls._redis is None or cls._redis_pid != os.getpid():
            settings = self.app.settings
            cls._redis = redis.Redis.from_url(
                settings.redis_url,
                socket_connect_timeout=settings.connect_timeout,
                socket_timeout=5.0,
                decode_responses=True,
                # Redis may restart under a running task: keep trying its state writes.
                retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=30),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
            cls._scripts = Transitions.register(cls._redis)
            cls._redis_pid = os.getpid()
        return cls._redis

    @property
    def scripts(self) -> Transitions:
        self.store  # noqa: B018 (creates the client and its scripts for this process)
        return type(self)._scripts

    def _run_script(self, name: str, task_id: str, *args: Any) -> Any:
        prefix = self.app.settings.key_prefix
        return getattr(self.scripts, name)(args=[prefix, task_id, now_iso(), now_ms(), *args])

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Claim the record, validate its params, then run the task body."""
        task_id = self.request.id
        redelivered = (self.request.delivery_info or {}).get("redelivered")
        runner = f"{self.request.hostname}:{os.getpid()}"
        claim = functools.partial(
            self._run_script,
            "claim",
            task_id,
            self.request.get(TURN_HEADER) or "",
            "1" if redelivered else "",
            self.name,
            dumps(kwargs),
            runner,
            LEASE_MS,
        )
        outcome = claim()
        if outcome[0] == "running":
            logger.info("redelivered while %s holds its lease: waiting for its end", outcome[1])
        while outcome[0] == "running":
            # Holding the turn (rather than dropping it) keeps the line one at a time, and the
            # unacknowledged message is still there to run the task again if that run dies.
            time.sleep(HOLD_POLL_SECONDS)
            outcome = claim()
        if outcome[0] != "claimed":
            raise Ignore(f"task {task_id} not run: {outcome[0]}")
        renew = functools.partial(self._run_script, "renew", task_id, runner, LEASE_MS)
        _leases.hold(task_id, renew)
        try:
            model = CATALOG[self.name].params if self.name in CATALOG else TaskParams
            params = model.model_validate(json.loads(outcome[1]))
            # The claim found no cancel request, and a run shorter than one progress
            # interval reports no progress: a trivial task costs no extra round trip.
            self._started = self._last_progress = self._last_cancel_check = time.monotonic()
            self._reported = False
            return self.run(params)
        finally:
            _leases.release(task_id)

    def check_cancelled(self) -> None:
        """Raise TaskCancelledError if a cancel was requested (looked up at most every 0.1 s)."""
        now = time.monotonic()
        if now - self._last_cancel_check < CANCEL_CHECK_INTERVAL:
            return
        self._last_cancel_check = now
        keys = Keys(self.app.settings.key_prefix)
        if self.store.hget(keys.task(self.request.id), "cancel_requested"):
            raise TaskCancelledError("cancelled on request")

    def progress(
        self, current: float, total: float, intermediate: Any = None, **extra: Any
    ) -> None:
        """Report progress at most once per `progress_interval`, the first after one interval.

        A run that reported progress also reports its end (100 %); one that ended within its
        first interval reports none: its SUCCESS follows at once.
        """
        self.check_cancelled()
        now = time.monotonic()
        ended = current >= total and self._reported
        if not ended and now - self._last_progress < self.app.settings.progress_interval:
            return
        self._last_progress = now
        self._reported = True
        percent = round(100.0 * current / total, 2) if total else 100.0
        meta = {
            "percent": percent,
            "current": current,
            "total": total,
            "intermediate": intermediate,
            **extra,
        }
        self.update_state(state=State.PROGRESS.value, meta=meta)
        self._run_script("progress", self.request.id, dumps(meta))

    def clear_pages(self) -> None:
        """Drop pages a previous attempt of this task wrote (a redelivery starts over)."""
        self.store.delete(Keys(self.app.settings.key_prefix).pages(self.request.id))

    def append_page(self, items: list[Any]) -> None:
        """Add one page of a large result (read with GET /tasks/{id}/pages/{n})."""
        self.store.rpush(Keys(self.app.settings.key_prefix).pages(self.request.id), dumps(items))

    def pace(self, params: TaskParams, fraction: float) -> None:
        """Sleep so that `fraction` of the work ends no sooner than that part of the delay."""
        while True:
            self.check_cancelled()
            behind = params.delay_seconds * fraction - (time.monotonic() - self._started)
            if behind <= 0:
                return
            time.sleep(min(behind, CANCEL_CHECK_INTERVAL))

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        self._finish(task_id, State.SUCCESS, None)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        if isinstance(exc, TaskCancelledError):
            self._finish(task_id, State.CANCELLED, None)
            return
        self._finish(
            task_id, State.FAILURE, {"type": type(exc).__name__, "message": _describe(exc)}
        )

    def _finish(self, task_id: str, state: State, error: dict[str, str] | None) -> None:
        # A hard time limit calls on_failure in the worker's main process, where no request
        # (and so no turn) is at hand: any turn of the running record then matches.
        turn = (self.request.get(TURN_HEADER) or "") if self.request.id == task_id else ""
        forget_at = now_ms() + self.app.settings.retention_seconds * 1000
        self._run_script("finish", task_id, turn, state.value, dumps(error), forget_at)


def _describe(exc: BaseException) -> str:
    """A one-line message for users: validation errors list their fields."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc) or type(exc).__name__
