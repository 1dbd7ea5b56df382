"""Submitting a task: validate against its declaration, record it, then publish it.

The record (with a range its type reserves, in the same script) is written before the
message, so the worker always finds it. If RabbitMQ surely did not take the message, the
record is removed again: a 503 leaves no half-created task behind. If it may have taken it
(sent, never confirmed), the record stays QUEUED with its turn in the outbox: the 503 names
the task, the scheduler publishes the turn again, and the worker runs a turn once.
"""

import asyncio
import hashlib
import json
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from taskline.api.auth import User
from taskline.api.errors import (
    ConflictError,
    ForbiddenError,
    InvalidParamsError,
    PayloadTooLargeError,
    TaskNotFoundError,
    TooManyRequestsError,
    UnavailableError,
    UnconfirmedError,
)
from taskline.api.producer import Producer
from taskline.api.store import TaskStore
from taskline.core.records import Snapshot, iso, now_ms, to_ms
from taskline.core.redis_clients import uses_sentinels
from taskline.core.registry import Registry, tasks_of
from taskline.core.searchable import searched
from taskline.core.settings import Settings
from taskline.core.transitions import (
    Call,
    Conflict,
    Created,
    CreateOutcome,
    Existing,
    Full,
    Limited,
    Link,
    Overlap,
    OverQuota,
    Reservation,
    Retried,
    TooLarge,
    Unknown,
)
from taskline.core.webhooks import allowed, hosts_of, url_problem

# How often a retry looks whether the first request's publish has ended.
PUBLISH_POLL_SECONDS = 0.05


def validate_params(tasks: Registry, name: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The params with defaults filled in, or InvalidParamsError listing what is wrong."""
    if name not in tasks:
        raise InvalidParamsError(
            [
                {
                    "type": "enum",
                    "loc": ["body", "name"],
                    "msg": f"no task type {name!r} is loaded; known: {', '.join(sorted(tasks))}",
                }
            ]
        )
    try:
        model = tasks[name].params.model_validate(params)
    except ValidationError as exc:
        raise InvalidParamsError(
            [
                {**err, "loc": ["body", "params", *err["loc"]]}
                for err in exc.errors(include_url=False, include_context=False, include_input=False)
            ]
        ) from exc
    return model.model_dump(mode="json")


def merged(original: Any, changes: Any) -> Any:
    """`changes` applied to `original` as a JSON merge patch (RFC 7386): objects merge key by
    key, `null` removes a key, anything else replaces."""
    if not isinstance(changes, dict):
        return changes
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in changes.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merged(result.get(key), value)
    return result


def reservation(tasks: Registry, name: str, params: dict[str, Any]) -> Reservation | None:
    """The range a task's (validated) params reserve, if its type declares one."""
    declared = tasks[name].exclusive_range
    if declared is None:
        return None
    return declared.ledger_id(params), *declared.bounds(params)


def described_range(tasks: Registry, name: str, params: dict[str, Any]) -> str:
    """ "serial numbers 1–10 of model 0111": a task's range, for messages."""
    declared = tasks[name].exclusive_range
    if declared is None:
        return "no range"
    first, last = declared.bounds(params)
    return f"{declared.unit} {first}–{last}{declared.where(params)}"


async def overlap_error(store: TaskStore, wanted: str, clash: Overlap, user: User) -> ConflictError:
    """The range is taken; the task holding it is named only to whoever may see it."""
    holder = "another task"
    snapshot = await store.read(clash.task_id)
    if snapshot is not None and user.sees(snapshot.record.owner):
        holder = f"task {clash.task_id}"
    return ConflictError(
        f"{wanted} are taken: they overlap {clash.first}–{clash.last}, reserved for {holder}"
    )


def kept_error(task_id: str, attempts: int, held: str) -> ConflictError:
    """An edit of the range of a task that has run: refused, and why."""
    return ConflictError(
        f"task {task_id} has already run ({attempts} attempt(s)) and keeps {held}: its run "
        "may have issued any of them, so its range never changes; cancel it and submit a new "
        "task for another range"
    )


def too_large_error(refused: TooLarge) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"the params take {refused.size} bytes as stored; a task may hold at most "
        f"{refused.limit} (params and result together)"
    )


def over_quota_error(refused: OverQuota) -> TooManyRequestsError:
    """A 429 without Retry-After: room comes back only when tasks are deleted or forgotten."""
    return TooManyRequestsError(
        f"your kept tasks hold {refused.used} bytes of params and results, and may hold at "
        f"most {refused.quota}: delete finished tasks (or wait until they are forgotten) "
        "to make room"
    )


def moment(value: datetime | None) -> tuple[str, int] | None:
    """A not_before as stored: ISO text and epoch milliseconds."""
    return None if value is None else (iso(value), to_ms(value))


class Submitter:
    """Puts tasks in line and publishes their turns."""

    def __init__(self, store: TaskStore, producer: Producer, settings: Settings) -> None:
        self.settings = settings
        self.store = store
        self.producer = producer
        self.tasks = tasks_of(settings)
        # How long a first publish may take (connect, then confirm), with a margin.
        self.publish_ms = int(2_000 * settings.connect_timeout) + 1_000
        # With sentinels, how many replicas must hold a new task before its 202, and how
        # long they are waited for: half the connect timeout, which is also the API's socket
        # timeout, so that WAIT answers first.
        self.replicas = settings.redis_replicas_to_ack if uses_sentinels(settings) else 0
        self.replicated_ms = int(500 * settings.connect_timeout)
        self.webhook_hosts = hosts_of(settings.webhook_hosts)
        # Told the task type of each task created and accepted (api.metrics); None: nothing.
        self.on_created: Callable[[str], None] | None = None

    async def publish_turn(self, snapshot: Snapshot, turn: int) -> None:
        """Publish the task's turn to its line's queue and take it off the outbox once
        confirmed."""
        record = snapshot.record
        self.store.of(record.line)  # a line no longer set up: 503, the turn stays in the outbox
        queue = self.store.lines.named(record.line).queue
        await self.producer.publish(
            record.id, record.name, record.params, record.priority, turn, queue
        )
        self.store.published(record.id, turn, record.line)

    async def submit(
        self,
        name: str,
        params: dict[str, Any],
        user: User,
        priority: int = 5,
        not_before: datetime | None = None,
        idempotency_key: str | None = None,
        link: Link | None = None,
        callback_url: str | None = None,
    ) -> Snapshot:
        """Create a task and put it in line (or in the postponed set); returns it.

        Retrying with the same Idempotency-Key and body answers the same task again. `link`:
        the task this one retries or clones (a retry is refused unless that task ended
        FAILURE or CANCELLED and was not retried yet). `callback_url`: POSTed the task when
        it ends, refused (422) unless its host is on TASKLINE_WEBHOOK_HOSTS.
        """
        if not user.changes:  # whatever route asks (one creates on a GET)
            raise ForbiddenError(
                f"{user.name} is a viewer: a viewer reads every task and changes nothing"
            )
        owner = user.name
        params = validate_params(self.tasks, name, params)
        if callback_url is not None and not allowed(callback_url, self.webhook_hosts):
            raise InvalidParamsError(
                f"callback_url: {url_problem(callback_url) or 'its host is not allowed'}: "
                "only http(s) URLs whose host is on TASKLINE_WEBHOOK_HOSTS may be called back"
            )
        request: list[Any] = [name, params, priority, not_before and iso(not_before)]
        if callback_url:
            request.append(callback_url)
        if link:  # the same key and params as a plain submission, yet another request
            request.append([link.kind, link.task_id])
        digest = hashlib.sha256(json.dumps(request).encode()).hexdigest()
        if idempotency_key:
            seen = await self.store.idempotent(owner, idempotency_key)
            if seen and (again := await self._again(owner, idempotency_key, *seen, digest)):
                return again
        task_id = str(uuid.uuid4())
        reserve = reservation(self.tasks, name, params)
        line = self.store.of(self.store.lines.of(name).name)  # its type's line
        outcome = await self._create(
            line.calls.create(
                task_id,
                name,
                params,
                priority,
                owner,
                moment(not_before),
                self.settings.max_waiting_per_user,
                (idempotency_key, digest) if idempotency_key else None,
                self.settings.creations_per_minute,
                reserve,
                max_task_bytes=self.settings.max_task_bytes,
                max_user_bytes=self.settings.max_user_bytes,
                link=link,
                callback_url=callback_url or "",
                searched=searched(
                    name,
                    self.tasks[name].searchable,
                    params,
                    self.settings.search_value_bytes,
                ),
            )
        )
        match outcome:
            case Unknown():
                assert link is not None  # only a retry's task can be gone
                raise TaskNotFoundError(f"task {link.task_id} not found")
            case Conflict(state):
                assert link is not None
                raise ConflictError(
                    f"task {link.task_id} is {state}: only a task that ended FAILURE or "
                    "CANCELLED can be retried (clone any task instead)"
                )
            case Retried(by):
                assert link is not None
                raise ConflictError(
                    {
                        "message": f"task {link.task_id} was retried already, by task {by}: "
                        "retry that one if it failed too, or clone this one",
                        "retried_by": by,
                    }
                )
            case Limited(retry_after):
                raise TooManyRequestsError(
                    f"more than {self.settings.creations_per_minute} tasks a minute",
                    headers={"Retry-After": str(retry_after)},
                )
            case Full():
                raise TooManyRequestsError(
                    f"at most {self.settings.max_waiting_per_user} waiting tasks per user",
                    headers={"Retry-After": "10"},
                )
            case Overlap():
                wanted = described_range(self.tasks, name, params)
                raise await overlap_error(self.store, wanted, outcome, user)
            case TooLarge():
                raise too_large_error(outcome)
            case OverQuota():
                raise over_quota_error(outcome)
            case Existing(found, seen_digest) if idempotency_key:  # the same key won meanwhile
                again = await self._again(owner, idempotency_key, found, seen_digest, digest)
                if again is None:  # its task was never published, and is gone: try again
                    return await self.submit(
                        name,
                        params,
                        user,
                        priority,
                        not_before,
                        idempotency_key,
                        link,
                        callback_url=callback_url,
                    )
                return again
            case Created(turn=turn, snapshot=snapshot):
                if turn:
                    await self._publish_new(snapshot, turn)
                if self.on_created is not None:
                    self.on_created(name)
                return snapshot
        raise AssertionError(outcome)

    async def _create(self, create: Call[CreateOutcome]) -> CreateOutcome:
        """Record a new task. With replicas to wait for, a task that no replica holds in time
        is taken back (503): a failover to a replica without its record would lose it, since
        the worker drops a turn whose record it does not know."""
        if not self.replicas:
            return await self.store.change(self.store.transitions.run(create))
        outcome, acked = await self.store.change(
            self.store.transitions.run_replicated(create, self.replicas, self.replicated_ms)
        )
        if isinstance(outcome, Created) and acked < self.replicas:
            record = outcome.snapshot.record
            await self.store.change(self.store.of(record.line).delete(record.id, unpublished=True))
            raise UnavailableError(
                f"Redis could not copy the task to {self.replicas} replica(s) within "
                f"{self.replicated_ms} ms, so it was not accepted; try again shortly"
            )
        return outcome

    async def _publish_new(self, snapshot: Snapshot, turn: int) -> None:
        """Publish a new task's first turn; forget the task if RabbitMQ surely lacks it."""
        try:
            await self.publish_turn(snapshot, turn)
        except UnconfirmedError:
            raise  # RabbitMQ may hold the message: the task stays, its turn in the outbox
        except UnavailableError:
            record = snapshot.record
            await self.store.change(self.store.of(record.line).delete(record.id, unpublished=True))
            raise

    async def _again(
        self, owner: str, key: str, task_id: str, seen_digest: str, digest: str
    ) -> Snapshot | None:
        """The task an Idempotency-Key already created, if this request is the same one.

        None when that task's first publish surely failed (the task and the key are gone):
        this request may create it afresh. While the first request may still be publishing
        it, the retry waits for that to end (at most the publish window), so that it never
        answers with a task that is about to be removed; still unsettled after the window
        (the first request stalled: RabbitMQ may yet refuse it), a 503, never the task.
        """
        if seen_digest != digest:
            raise InvalidParamsError(
                "this Idempotency-Key was used for a different request; use a new key"
            )
        existing, since = await self.store.read_with_outbox(task_id)
        while existing is not None and since is not None and now_ms() < since + self.publish_ms:
            await asyncio.sleep(PUBLISH_POLL_SECONDS)
            existing, since = await self.store.read_with_outbox(task_id)
        if existing is None:
            if await self.store.idempotent(owner, key) is None:
                return None
            raise ConflictError(
                f"the task created with this Idempotency-Key ({task_id}) was deleted"
            )
        if since is not None:
            raise UnavailableError(
                f"the first request with this Idempotency-Key is still sending its task "
                f"({task_id}) to RabbitMQ; try again shortly"
            )
        return existing
