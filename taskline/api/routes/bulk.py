"""Bulk actions: cancel, retry or delete the tasks a list of ids names, or those a filter of
the listing matches.

Each task goes through the single route's own operation (api.control), as the caller: a user
acts on their own tasks, an admin on all, a viewer on none (403); another user's task is
reported as not found, as an unknown one is. One call acts on at most TASKLINE_BULK_MAX
tasks: more ids are refused (422), and a filter call stops there and answers with a cursor
to continue from. A task that cannot be acted on is reported refused, with the detail and
status the single route would have answered; the others are still acted on. The tasks are
read together (a filter's page, or READ_CHUNK ids a round trip), then changed one by one.
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, status
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from taskline.api import control
from taskline.api.auth import User
from taskline.api.deps import CurrentUser, SettingsDep, StoreDep, SubmitterDep
from taskline.api.errors import (
    InvalidParamsError,
    LineGoneError,
    TasklineError,
    UnavailableError,
    UnconfirmedError,
    encodable,
)
from taskline.api.filters import TaskFilter
from taskline.api.store import TaskStore
from taskline.core.records import Snapshot
from taskline.core.settings import Settings
from taskline.core.transitions import Cancelled

router = APIRouter(prefix="/tasks/bulk", tags=["tasks"])

# What a bulk action records in each task's history (`via`).
VIA = "bulk"
SETTING = "TASKLINE_BULK_MAX"
# Ids read by one round trip, as a page of the listing: a read blocks Redis while it runs.
READ_CHUNK = 500

Outcome = Literal["cancelled", "cancelling", "retried", "deleted", "refused"]
TaskIdText = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class BulkRequest(BaseModel):
    """The tasks to act on: `ids`, or a `filter` of the listing (with `cursor` to continue
    and `limit` to take fewer than TASKLINE_BULK_MAX in one call); exactly one of the two."""

    model_config = ConfigDict(extra="forbid")

    ids: Annotated[list[TaskIdText] | None, Field(min_length=1)] = None
    filter: TaskFilter | None = None
    cursor: Annotated[str | None, Field(pattern=r"^\d{1,18}$")] = None
    limit: Annotated[int | None, Field(ge=1)] = None

    @model_validator(mode="after")
    def _ids_or_filter(self) -> "BulkRequest":
        if (self.ids is None) == (self.filter is None):
            raise ValueError("send exactly one of `ids` and `filter`")
        if self.ids is not None and (self.cursor is not None or self.limit is not None):
            raise ValueError("`cursor` and `limit` go with `filter`, not with `ids`")
        return self


class BulkResult(BaseModel):
    """What was done to one task: `retry_id` names a retry's new task; a refusal carries the
    status and detail the single route would have answered with."""

    id: str
    outcome: Outcome
    status: int | None = None
    detail: Any = None
    retry_id: str | None = None


class BulkReport(BaseModel):
    """One result per task, in order; `next_cursor` continues a filter call (None: done)."""

    results: list[BulkResult]
    next_cursor: str | None = None


RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "Not authenticated"},
    403: {"description": "A viewer changes nothing"},
    422: {
        "description": "Not exactly one of `ids` and `filter`, a bad filter, or more ids "
        "(or a larger `limit`) than TASKLINE_BULK_MAX"
    },
    503: {
        "description": "Redis or RabbitMQ unavailable: the tasks acted on before are in "
        "`detail.results`"
    },
}

# Acts on a task: its id, and the task as read if the user may see it (None: read it again,
# to answer as the single route would).
Act = Callable[[str, Snapshot | None], Awaitable[BulkResult]]


async def targets(
    body: BulkRequest, store: TaskStore, settings: Settings, user: User
) -> tuple[list[tuple[str, Snapshot | None]], str | None]:
    """The tasks to act on (each once, in order; None for one unknown or not the user's, as
    read) and the cursor after them, if more match."""
    most = settings.bulk_max
    if body.ids is not None:
        ids = list(dict.fromkeys(body.ids))  # each once, in order
        if len(ids) > most:
            raise InvalidParamsError(
                {
                    "message": f"{len(ids)} ids: one call acts on at most {most} "
                    f"({SETTING}); send them in several calls, or use a filter",
                    "setting": SETTING,
                    "max": most,
                }
            )
        seen: dict[str, Snapshot] = {}
        for start in range(0, len(ids), READ_CHUNK):
            for snapshot in await store.read_many(ids[start : start + READ_CHUNK]):
                if user.sees(snapshot.record.owner):
                    seen[snapshot.record.id] = snapshot
        return [(task_id, seen.get(task_id)) for task_id in ids], None
    assert body.filter is not None
    limit = body.limit or most
    if limit > most:
        raise InvalidParamsError(
            {
                "message": f"limit {limit}: one call acts on at most {most} ({SETTING})",
                "setting": SETTING,
                "max": most,
            }
        )
    cursor = int(body.cursor) if body.cursor else None
    snapshots, after = await body.filter.page(store, user.owner_filter, limit, cursor)
    return [(s.record.id, s) for s in snapshots], None if after is None else str(after)


async def each(
    body: BulkRequest, store: TaskStore, settings: Settings, user: User, act: Act
) -> BulkReport:
    """Act on every target in turn. A refusal is reported and the rest go on (a task whose
    line is no longer set up among them); Redis or RabbitMQ unreachable ends the call with a
    503 that lists what was done until then."""
    tasks, next_cursor = await targets(body, store, settings, user)
    results: list[BulkResult] = []
    for task_id, seen in tasks:
        try:
            results.append(await act(task_id, seen))
        except LineGoneError as exc:  # that task's line is gone, not Redis or RabbitMQ
            results.append(
                BulkResult(id=task_id, outcome="refused", status=exc.status_code, detail=exc.detail)
            )
        except UnavailableError as exc:
            if isinstance(exc, UnconfirmedError):  # a retry kept, published once RabbitMQ is back
                results.append(BulkResult(id=task_id, outcome="retried", retry_id=exc.task_id))
            raise UnavailableError(
                {
                    "message": f"{encodable(exc.detail)}; the call stopped after the tasks in "
                    "`results`",
                    "results": [r.model_dump(mode="json") for r in results],
                },
                headers=exc.headers,
            ) from exc
        except TasklineError as exc:
            results.append(
                BulkResult(id=task_id, outcome="refused", status=exc.status_code, detail=exc.detail)
            )
    return BulkReport(results=results, next_cursor=next_cursor)


@router.post("/cancel", response_model=BulkReport, responses=RESPONSES)
async def cancel_tasks(
    body: BulkRequest, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> BulkReport:
    """Cancel each task as `POST /tasks/{id}/cancel` does, without waiting: a waiting one is
    `cancelled`, a running one `cancelling` (it stops within a second)."""

    async def act(task_id: str, seen: Snapshot | None) -> BulkResult:
        outcome = await control.cancel(store, settings, task_id, user, VIA, seen)
        done: Outcome = "cancelled" if isinstance(outcome, Cancelled) else "cancelling"
        return BulkResult(id=task_id, outcome=done)

    return await each(body, store, settings, user, act)


@router.post(
    "/retry",
    status_code=status.HTTP_200_OK,
    response_model=BulkReport,
    responses=RESPONSES,
)
async def retry_tasks(
    body: BulkRequest,
    store: StoreDep,
    submitter: SubmitterDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> BulkReport:
    """Retry each task as `POST /tasks/{id}/retry` does (limits and quota included): its new
    task is `retry_id`."""

    async def act(task_id: str, seen: Snapshot | None) -> BulkResult:
        snapshot = await control.retry(store, submitter, task_id, user, via=VIA, seen=seen)
        return BulkResult(id=task_id, outcome="retried", retry_id=snapshot.record.id)

    return await each(body, store, settings, user, act)


@router.post("/delete", response_model=BulkReport, responses=RESPONSES)
async def delete_tasks(
    body: BulkRequest, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> BulkReport:
    """Delete each task as `DELETE /tasks/{id}` does (a running one is refused)."""

    async def act(task_id: str, seen: Snapshot | None) -> BulkResult:
        await control.delete(store, task_id, user, seen)
        return BulkResult(id=task_id, outcome="deleted")

    return await each(body, store, settings, user, act)
