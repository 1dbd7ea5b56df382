"""The base class of every Taskline task: Celery's side of a run, its steps in worker.hooks.

Each message gets a `Run` (worker.hooks.run) holding everything the run learns; the task
object, one per task type in a process, keeps none of it. `__call__` takes the steps in
order, and Celery's `on_success`/`on_failure` record the end:

- claim (hooks.claim): a message for an unknown, cancelled, finished or superseded task is
  skipped without running (`Ignore`), so control over waiting tasks never depends on
  touching RabbitMQ or on Celery's in-memory revoke list. The params come from the record,
  so an edit made while the task waited is the one that runs. A redelivered message of a
  task whose run still holds its lease (RabbitMQ's consumer_timeout or a lost connection
  requeued the message of a run that goes on, perhaps to a standby worker) holds its turn
  until that run ends, then is dropped; only a lapsed lease means the run died, and the
  task runs again. On a quorum queue a message that comes to nothing while tasks wait goes
  back to the queue (`Reject`), bound again when it comes (worker.consumer).
- lease (hooks.lease): a run holds a lease on its task while it is alive, renewed by a
  thread.
- the body, with the soft limit as its deadline (hooks.limits); its steps look for a cancel
  (hooks.cancellation) and report progress (hooks.progress) and pages (hooks.result).
- retry (hooks.retry): a failure the task type's retry policy names ends the run, not the
  task: the record waits for the next attempt (SCHEDULED, released into the line by the
  scheduler), and Celery records the run as RETRY, never FAILURE, so its result backend
  tells no other story than the record.
- result (hooks.result): a result that would take the task past its bytes ends it FAILURE.
- finish (hooks.finish), or, for a run the main process killed (hard time limit, a cancel
  ignored past its grace), its end recorded from there once the child is gone
  (hooks.limits).

Celery's STARTED and SUCCESS of a run go with its claim and its finish (the task folds its
result writes, worker.backend): a trivial run costs the worker two Redis scripts, not four.

The claim returns the run's token (its attempt number). Every write of the run (progress,
pages, lease renewal, its end) carries it, and the scripts refuse a stale one: a run whose
lease lapsed while it was alive (a stalled host) cannot overwrite the attempt that replaced
it, and it stops at its next step.
"""

import os
from typing import Any, ClassVar

import redis
from celery import Task
from celery.exceptions import Ignore, Reject, TaskPredicate
from celery.exceptions import Retry as RetryLater
from celery.signals import celeryd_after_setup, task_revoked
from celery.utils.log import get_task_logger
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from taskline.context import Cancelled, RunStopped, Superseded
from taskline.core import redis_clients
from taskline.core.records import TURN_HEADER, Keys, State
from taskline.core.registry import tasks_of
from taskline.core.settings import Settings
from taskline.core.transitions import Claimed, PassedOn, ResultMeta, Transitions
from taskline.core.webhooks import heard
from taskline.declaring import Params, TaskDeclaration
from taskline.worker.backend import held
from taskline.worker.celery_app import TasklineCelery
from taskline.worker.hooks import claim, finish, limits, result, retry
from taskline.worker.hooks.finish import End
from taskline.worker.hooks.lease import LeaseKeeper
from taskline.worker.hooks.run import Run

# The attribute of Celery's request (one per message) that holds the message's run.
RUN = "taskline_run"

logger = get_task_logger(__name__)
# The leases of this process's runs, renewed by one thread per process.
_leases = LeaseKeeper()


class TasklineTask(Task[Any, Any]):
    """Runs a catalogue task against its Redis record."""

    typing = False  # params are validated by the catalogue model instead
    # Expected outcomes: logged without a traceback.
    throws = (Cancelled, Superseded)
    # Celery's STARTED and SUCCESS go with the claim and the finish (worker.backend).
    folds_result_writes = True
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
            # The line this worker consumes: its runs write that line's sets.
            line = self._line_keys()
            cls._transitions = Transitions(cls._redis, line)
            cls._redis_pid = os.getpid()
        return cls._redis

    def _line_keys(self) -> Keys:
        app = self.app
        assert isinstance(app, TasklineCelery)
        return Keys(app.settings.key_prefix, app.line)

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

    @property
    def declaration(self) -> TaskDeclaration | None:
        """The declaration of this task type (None for a task registered another way)."""
        return tasks_of(self.settings).get(self.name)

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
            self._celery_held,
            logger,
        )
        setattr(request, RUN, run)  # where this message's end (on_success, on_failure) finds it
        redelivered = bool((request.delivery_info or {}).get("redelivered"))
        claimed = claim.claim(run, request.get(TURN_HEADER), redelivered, kwargs)
        if isinstance(claimed, PassedOn):
            # A turn of a quorum queue that came to nothing while tasks wait: back in the
            # queue, bound again to the line's head when it comes (worker.consumer).
            reason = f"task {run.task_id} not run: {claimed.reason}; turn passed on"
            raise Reject(reason, requeue=True)
        if not isinstance(claimed, Claimed):
            raise Ignore(f"task {run.task_id} not run: {claimed.reason}")
        _leases.hold(run)
        try:
            params = claim.validated(run, claimed)
            run.begin(params, limits.soft_limit(run.declaration, self.soft_time_limit))
            value = self._attempt(run, params)
            result.measure(run, value)
            return value
        finally:
            _leases.release(run)

    def _celery_progress(self, meta: dict[str, Any]) -> None:
        self.update_state(state=State.PROGRESS.value, meta=meta)

    def _celery_held(self, state: State) -> ResultMeta | None:
        return held(self, state.value)

    def body(self, run: Run, params: Params) -> Any:
        """The task's own code: a task registered another way takes its params alone."""
        return self.run(params)

    def _attempt(self, run: Run, params: Params) -> Any:
        """Run the body. A failure its retry policy retries postpones the task to its next
        attempt and ends this run as Celery's RETRY: the message is acknowledged, and the
        worker goes on with the line while the task waits."""
        try:
            return self.body(run, params)
        except (RunStopped, TaskPredicate):
            raise  # a stop, or Celery's own control flow: never a failure to retry
        except Exception as exc:
            due = retry.postpone(run, exc)
            if due is None:
                raise
            raise RetryLater(exc=exc, when=due) from exc

    def on_success(self, retval: Any, task_id: str, args: Any, kwargs: Any) -> None:
        self._finish(task_id, finish.end_of(None))

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        trace = finish.traceback_of(exc, self.settings.traceback_bytes)
        self._finish(task_id, finish.end_of(exc), trace)

    def _finish(self, task_id: str, end: End | None, trace: str = "") -> None:
        if end is None:
            return  # superseded: the attempt that replaced this run records the end
        run: Run | None = getattr(self.request, RUN, None)
        if run is not None:  # in the pool child, inside the run
            finish.finish(run, end, trace)
        else:
            # A hard time limit calls on_failure in the worker's main process, which killed
            # the pool child: no run at hand, so the run is named by its process.
            _finish_when_child_gone(self, task_id, end)


# The worker's node name ("celery@host"), as its runs record it; set when the worker boots.
_node: dict[str, str] = {}


@celeryd_after_setup.connect
def _remember_node(sender: str, **_: Any) -> None:
    _node["name"] = sender


def _finish_when_child_gone(task: TasklineTask, task_id: str, end: End) -> None:
    limits.finish_when_child_gone(
        task.store,
        task.transitions,
        task_id,
        end,
        node=_node.get("name"),
        retention_seconds=task.settings.retention_seconds,
        log=logger,
        metrics=task.settings.metrics,
        heard=heard(task.settings.webhooks),
    )


@task_revoked.connect
def _stopped_after_cancel(sender: Any, request: Any, terminated: bool, **_: Any) -> None:
    """A run killed for ignoring its cancel request ends CANCELLED once its child is gone."""
    if terminated and isinstance(sender, TasklineTask):
        error = {"type": "Cancelled", "message": "stopped after the cancel grace period"}
        _finish_when_child_gone(sender, request.id, (State.CANCELLED, error))
