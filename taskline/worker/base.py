"""The base class of every Taskline task: record checks, lifecycle, progress, cancellation.

Before running a message the task claims its record; a message for an unknown, cancelled,
finished or superseded task is skipped without running (`Ignore`), so control over waiting
tasks never depends on touching RabbitMQ or on Celery's in-memory revoke list. The params come
from the record, so an edit made while the task waited is the one that runs.

The claim returns the run's token (its attempt number). Every write of the run (progress,
pages, lease renewal, its end) carries it, and the scripts refuse a stale one: a run whose
lease lapsed while it was alive (a stalled host) cannot overwrite the attempt that replaced
it, and it stops at its next step.

A failure the task type's retry policy names ends the run, not the task: the record waits for
the next attempt (SCHEDULED, released into the line by the scheduler), and Celery records the
run as RETRY, never FAILURE, so its result backend tells no other story than the record.

A run holds a lease on its task while it is alive. A redelivered message of a task whose run
still holds it (RabbitMQ's consumer_timeout or a lost connection requeued the message of a run
that goes on, perhaps to a standby worker) holds its turn until that run ends, then is
dropped; only a lapsed lease means the run died, and the task runs again.
"""

import os
import threading
import time
from datetime import UTC, datetime
from typing import Any, ClassVar

import psutil
import redis
from celery import Task
from celery.exceptions import Ignore, TaskPredicate
from celery.exceptions import Retry as RetryLater
from celery.signals import celeryd_after_setup, task_revoked
from celery.utils.log import get_task_logger
from pydantic import ValidationError
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from taskline.context import Cancelled, RunStopped, Superseded
from taskline.core import redis_clients
from taskline.core.previews import cut
from taskline.core.records import TURN_HEADER, Keys, State, dumps, now_ms
from taskline.core.registry import limits, tasks_of
from taskline.core.replies import text_or_none
from taskline.core.settings import Settings
from taskline.core.transitions import Cancelling, Claimed, Stale, Transitions
from taskline.declaring import Params, TaskDeclaration
from taskline.worker.celery_app import TasklineCelery
from taskline.worker.hooks import claim
from taskline.worker.hooks.lease import LeaseKeeper
from taskline.worker.hooks.run import Run
from taskline.worker.retries import backoff, retries

# How long the worker waits for a killed pool child to be gone before recording its end.
CHILD_EXIT_SECONDS = 10.0
# The attribute of Celery's request (one per message) that holds the message's run.
RUN = "taskline_run"

logger = get_task_logger(__name__)


class ResultTooLargeError(Exception):
    """The result would take the task past the bytes one task may hold: it is not stored."""


# The leases of this process's runs, renewed by one thread per process.
_leases = LeaseKeeper()


class TasklineTask(Task[Any, Any]):
    """Runs a catalogue task against its Redis record."""

    typing = False  # params are validated by the catalogue model instead
    # Expected outcomes: logged without a traceback.
    throws = (Cancelled, Superseded)
    _redis: ClassVar[redis.Redis | None] = None
    _transitions: ClassVar[Transitions | None] = None
    _redis_pid: ClassVar[int] = 0

    @property
    def store(self) -> redis.Redis:
        """A Redis client of this process (pool children must not share their parent's)."""
        cls = type(self)
        if cls._redis is None or cls._redis_pid != os.getpid():
            settings = self.settings
            cls._redis = redis_clients.client(
                settings,
                socket_connect_timeout=settings.connect_timeout,
                socket_timeout=5.0,
                decode_responses=True,
                # Redis may restart under a running task: keep trying its state writes.
                retry=Retry(ExponentialBackoff(cap=2.0, base=0.1), retries=30),
                retry_on_error=[redis.ConnectionError, redis.TimeoutError],
            )
            cls._transitions = Transitions(cls._redis, Keys(settings.key_prefix))
            cls._redis_pid = os.getpid()
        return cls._redis

    @property
    def transitions(self) -> Transitions:
        self.store  # noqa: B018 (creates the client and its scripts for this process)
        transitions = type(self)._transitions
        assert transitions is not None  # made with the client
        return transitions

    @property
    def settings(self) -> Settings:
        """The settings of the app that runs this task (always a TasklineCelery)."""
        app = self.app
        assert isinstance(app, TasklineCelery)
        return app.settings

    @property
    def task_id(self) -> str:
        """The id of the task of the message being run (every message names one)."""
        task_id = self.request.id
        assert task_id is not None
        return task_id

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Claim the record, validate its params, then run the task body."""
        request = self.request
        run = Run(
            self.task_id,
            self.name,
            f"{request.hostname}:{os.getpid()}",
            self.declaration,
            self.settings,
            self.store,
            self.transitions,
            self._celery_progress,
            logger,
        )
        setattr(request, RUN, run)  # where this message's end (on_success, on_failure) finds it
        redelivered = bool((request.delivery_info or {}).get("redelivered"))
        claimed = claim.claim(run, request.get(TURN_HEADER), redelivered, kwargs)
        if not isinstance(claimed, Claimed):
            raise Ignore(f"task {run.task_id} not run: {claimed.reason}")
        _leases.hold(run)
        try:
            params = claim.validated(run, claimed)
            run.begin(params, self.soft_limit())
            result = self._attempt(run, params)
            run.stored = _storable(run, result, claimed.params_bytes)
            return result
        finally:
            _leases.release(run)

    def _celery_progress(self, meta: dict[str, Any]) -> None:
        self.update_state(state=State.PROGRESS.value, meta=meta)

    def body(self, run: Run, params: Params) -> Any:
        """The task's own code: a task registered another way takes its params alone."""
        return self.run(params)

    def _attempt(self, run: Run, params: Params) -> Any:
        """Run the task body. A failure its retry policy retries postpones the task to its
        next attempt and ends this run as Celery's RETRY: the message is acknowledged, and
        the worker goes on with the line while the task waits."""
        try:
            return self.body(run, params)
        except (RunStopped, TaskPredicate):
            raise  # a stop, or Celery's own control flow: never a failure to retry
        except Exception as exc:
            due = _retry_later(run, exc)
            if due is None:
                raise
            raise RetryLater(exc=exc, when=due) from exc

    @property
    def declaration(self) -> TaskDeclaration | None:
        """The declaration of this task type (None for a task registered another way)."""
        return tasks_of(self.settings).get(self.name)

    def soft_limit(self) -> float:
        """Seconds a run of this task may take before its soft time limit strikes."""
        declaration = self.declaration
        return limits(declaration)[0] if declaration else float(self.soft_time_limit or 0)

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        self._finish(task_id, State.SUCCESS, None)

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        if isinstance(exc, Superseded):
            return  # the attempt that replaced this run records the end
        if isinstance(exc, Cancelled):
            self._finish(task_id, State.CANCELLED, None)
            return
        self._finish(
            task_id, State.FAILURE, {"type": type(exc).__name__, "message": _describe(exc)}
        )

    def _finish(self, task_id: str, state: State, error: dict[str, str] | None) -> None:
        run: Run | None = getattr(self.request, RUN, None)
        if run is not None:  # in the pool child, inside the run
            if run.token:
                forget_at = now_ms() + run.settings.retention_seconds * 1000
                stored = run.stored if state is State.SUCCESS else 0
                run.transitions.finish(
                    task_id, state, error, forget_at, token=run.token, stored=stored
                )
        else:
            # A hard time limit calls on_failure in the worker's main process, which killed
            # the pool child: no run at hand, so the run is named by its process.
            _finish_when_child_gone(self, task_id, state, error)


def _retry_later(run: Run, exc: Exception) -> datetime | None:
    """Postpone the task to its next attempt if its policy retries this failure: when
    that is, or None (the run ends FAILURE)."""
    policy = run.declaration.retry if run.declaration is not None else None
    if policy is None or not retries(policy, exc, run.token):
        return None
    wait = backoff(policy, run.token)
    error, _ = cut(
        {"type": type(exc).__name__, "message": _describe(exc)}, run.settings.preview_bytes
    )
    due = now_ms() + round(wait * 1000)
    outcome = run.transitions.retry(
        run.task_id, run.token, error, due, kept=run.settings.retry_errors_kept
    )
    if isinstance(outcome, Stale):
        raise Superseded("another attempt holds this task now") from exc
    if isinstance(outcome, Cancelling):
        return None  # asked to stop: it ends as a failure does, not run again
    return datetime.fromtimestamp(due / 1000, UTC)


def _storable(run: Run, result: Any, params_bytes: int) -> int:
    """The bytes the result takes as stored; ResultTooLargeError (the task ends FAILURE,
    the result is not kept) when params and result together pass the task's limit."""
    size = len(dumps(result).encode())
    limit = run.settings.max_task_bytes
    if params_bytes + size > limit:
        raise ResultTooLargeError(
            f"the result takes {size} bytes as stored and the params {params_bytes}: "
            f"over the {limit} bytes a task may hold, so the result was not kept"
        )
    return size


def append_page(run: Run, items: list[Any]) -> None:
    """Add one page of a large result (read with GET /tasks/{id}/pages/{n})."""
    if not run.transitions.page(run.task_id, run.token, items):
        raise Superseded("another attempt holds this task now")


def _describe(exc: BaseException) -> str:
    """A one-line message for users: validation errors list their fields."""
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc) or type(exc).__name__


# The worker's node name ("celery@host"), as its runs record it; set when the worker boots.
_node: dict[str, str] = {}


@celeryd_after_setup.connect
def _remember_node(sender: str, **_: Any) -> None:
    _node["name"] = sender


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _finish_when_child_gone(
    task: TasklineTask, task_id: str, state: State, error: dict[str, str] | None
) -> None:
    """Record the end of a run this worker's main process stopped, once its child is gone.

    In a thread: the main process must go on serving (the next task starts meanwhile). The
    run is named by its runner, so this never ends an attempt that another worker took.
    """

    def finish() -> None:
        runner = text_or_none(task.store.hget(task.transitions.keys.task(task_id), "runner"))
        node, _, pid = (runner or "").rpartition(":")
        if not pid.isdecimal() or node != _node.get("name", node):
            return
        deadline = time.monotonic() + CHILD_EXIT_SECONDS
        while not _gone(int(pid)) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not _gone(int(pid)):
            logger.warning("pool child %s of task %s outlived its stop", pid, task_id)
            return
        forget_at = now_ms() + task.settings.retention_seconds * 1000
        task.transitions.finish(task_id, state, error, forget_at, runner=runner)

    threading.Thread(target=finish, name=f"finish-{task_id}", daemon=True).start()


@task_revoked.connect
def _stopped_after_cancel(sender: Any, request: Any, terminated: bool, **_: Any) -> None:
    """A run killed for ignoring its cancel request ends CANCELLED once its child is gone."""
    if terminated and isinstance(sender, TasklineTask):
        error = {"type": "Cancelled", "message": "stopped after the cancel grace period"}
        _finish_when_child_gone(sender, request.id, State.CANCELLED, error)
