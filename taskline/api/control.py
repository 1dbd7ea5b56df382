"""Cancel, retry and delete of one task: the policy the single routes and the bulk actions
(api.routes.bulk) both apply, so a task is controlled the same way whichever asked.

Each raises the error a single request answers with (TaskNotFoundError for an unknown task
or another user's, ConflictError for the wrong state, the submission's errors for a retry,
UnavailableError when Redis or RabbitMQ cannot be reached); `via` names what asked
('bulk'), recorded in the task's history; `seen` is the task as the caller already read it
and found visible to the user (a bulk action reads all its tasks in one round trip), None to
read it here.
"""

from taskline.api.auth import User
from taskline.api.errors import ConflictError, TaskNotFoundError
from taskline.api.store import TaskStore
from taskline.api.submit import Submitter
from taskline.core.log_tags import tag_task
from taskline.core.records import Snapshot, now_ms
from taskline.core.settings import Settings
from taskline.core.transitions import Cancelled, Cancelling, Ended, Link, Running, Unknown
from taskline.core.webhooks import heard


async def visible(store: TaskStore, task_id: str, user: User) -> Snapshot:
    """The task if it exists and the user may see it, else TaskNotFoundError."""
    tag_task(task_id)
    snapshot = await store.read(task_id)
    if snapshot is None or not user.sees(snapshot.record.owner):
        raise TaskNotFoundError(f"task {task_id} not found")
    return snapshot


async def _current(store: TaskStore, task_id: str, user: User, seen: Snapshot | None) -> Snapshot:
    """The task as `seen`, else read and checked by `visible`."""
    if seen is None:
        return await visible(store, task_id, user)
    tag_task(task_id)
    return seen


async def cancel(
    store: TaskStore,
    settings: Settings,
    task_id: str,
    user: User,
    via: str = "",
    seen: Snapshot | None = None,
) -> Cancelled | Cancelling:
    """Cancel a waiting task (Cancelled), or ask a running one to stop (Cancelling)."""
    current = (await _current(store, task_id, user, seen)).record
    now = now_ms()
    outcome = await store.change(
        store.of(current.line).cancel(
            task_id,
            now + int(settings.cancel_grace_seconds * 1000),
            now + settings.retention_seconds * 1000,
            via,
            metrics=settings.metrics,  # a waiting task's end, counted by the cancel script
            heard=heard(settings.webhooks),  # and put in the webhook outbox if a URL hears of it
        )
    )
    match outcome:
        case Unknown():
            raise TaskNotFoundError(f"task {task_id} not found")
        case Ended(state):
            raise ConflictError(f"task {task_id} already ended in {state}")
    return outcome


async def retry(
    store: TaskStore,
    submitter: Submitter,
    task_id: str,
    user: User,
    idempotency_key: str | None = None,
    via: str = "",
    seen: Snapshot | None = None,
) -> Snapshot:
    """Submit a task that ended FAILURE or CANCELLED again, linked both ways; the new task.
    Its callback_url is the original's, checked against TASKLINE_WEBHOOK_HOSTS as it stands."""
    record = (await _current(store, task_id, user, seen)).record
    link = Link("retry", task_id, record.retried_by, via)
    return await submitter.submit(
        record.name,
        record.params,
        user,
        record.priority,
        None,
        idempotency_key,
        link,
        callback_url=record.callback_url,
    )


async def delete(store: TaskStore, task_id: str, user: User, seen: Snapshot | None = None) -> None:
    """Forget a task that is not running: record, result, history and indexes."""
    current = (await _current(store, task_id, user, seen)).record
    match await store.change(store.of(current.line).delete(task_id)):
        case Unknown():
            raise TaskNotFoundError(f"task {task_id} not found")
        case Running():
            raise ConflictError(f"task {task_id} is running: cancel it first")
