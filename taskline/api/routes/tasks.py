"""Tasks: submit, read, list, wait, edit, postpone, cancel, retry, clone, delete, stream.

Every route needs a user; a user who is not an admin sees only their own tasks, and another
user's task reads as unknown (404), not forbidden.
"""

import asyncio
import contextlib
import functools
import hashlib
import time
from collections.abc import AsyncGenerator, AsyncIterator
from datetime import UTC, datetime
from typing import Annotated, Any, NoReturn

from fastapi import (
    APIRouter,
    Depends,
    Header,
    Path,
    Query,
    Request,
    Response,
    WebSocket,
    status,
)
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import StringConstraints
from starlette.websockets import WebSocketDisconnect, WebSocketState

from taskline.api import control
from taskline.api.auth import User
from taskline.api.control import visible
from taskline.api.deps import (
    CurrentUser,
    HubDep,
    SettingsDep,
    SlotsDep,
    StoreDep,
    SubmitterDep,
    bearer_token,
    fence,
    token_user,
)
from taskline.api.errors import (
    ConflictError,
    ForbiddenError,
    InvalidParamsError,
    PreconditionFailedError,
    TasklineError,
    TaskNotFoundError,
    TooManyRequestsError,
    UnauthorizedError,
    UnavailableError,
)
from taskline.api.events import EventHub, wait_for
from taskline.api.predictions import Predictor
from taskline.api.preview import budget
from taskline.api.schemas import (
    EtaOut,
    EventId,
    HistoryEntry,
    ResultPage,
    TaskClone,
    TaskCreate,
    TaskOut,
    TaskPage,
    TaskPatch,
    TaskResult,
    event_data,
    resume_point,
    task_out,
)
from taskline.api.store import Search, TaskStore, TooBroadError, redis_errors
from taskline.api.streams import Fence, StreamSlots
from taskline.api.submit import (
    Submitter,
    described_range,
    kept_error,
    merged,
    moment,
    over_quota_error,
    overlap_error,
    reservation,
    too_large_error,
    validate_params,
)
from taskline.core.lines import LINE_PATTERN
from taskline.core.log_tags import tag_task
from taskline.core.records import TERMINAL, Snapshot, State, dumps, now_iso
from taskline.core.registry import Registry, tasks_of
from taskline.core.replies import text_or_none
from taskline.core.searchable import part, searched
from taskline.core.transitions import (
    Cancelling,
    Conflict,
    Kept,
    Limited,
    Link,
    Overlap,
    OverQuota,
    Postpone,
    TooLarge,
    Unknown,
    VersionMismatch,
)

router = APIRouter(prefix="/tasks", tags=["tasks"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Unknown task"}}
_AUTH: dict[int | str, dict[str, Any]] = {401: {"description": "Not authenticated"}}
MAX_WAIT_SECONDS = 60
IDEMPOTENCY_KEY_MAX = 200
MAX_PAGE = 500
_MOMENT = "ISO-8601 (UTC unless it says) or seconds since the epoch."
# A cancel answers once the task has stopped, or after this long with its current state.
CANCEL_ANSWER_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0


class _LastEncoded:
    """The JSON of the snapshot encoded last. A gathered read (taskline.api.reads) hands one
    snapshot to every request that asked for the task in that turn of the event loop, and
    they are answered one after the other: the JSON is made once for all of them."""

    def __init__(self) -> None:
        self._snapshot: Snapshot | None = None
        self._body = b""

    def __call__(self, snapshot: Snapshot) -> bytes:
        if snapshot is not self._snapshot:
            self._body = task_out(snapshot).model_dump_json().encode()
            self._snapshot = snapshot
        return self._body


_encoded = _LastEncoded()


def task_response(
    snapshot: Snapshot, status_code: int = status.HTTP_200_OK, *, traceback: bool = False
) -> Response:
    """The task as JSON with its ETag, serialised once (FastAPI would validate it again);
    with `traceback` (an admin's read), a failure's traceback in its error."""
    if traceback and snapshot.record.traceback:
        body = task_out(snapshot, traceback=True).model_dump_json().encode()
    else:
        body = _encoded(snapshot)
    return Response(
        body,
        status_code,
        media_type="application/json",
        headers={"ETag": snapshot.record.etag},
    )


async def wait_until_terminal(
    store: TaskStore,
    hub: EventHub,
    task_id: str,
    user: User,
    seconds: float,
    slots: StreamSlots | None = None,
    fenced: Fence | None = None,
) -> Snapshot:
    """The task once terminal, or after `seconds` as it is then.

    A task that must be waited for holds one of the user's stream slots meanwhile, if
    `slots` (429 beyond), and its wait ends with UnauthorizedError once the credentials
    behind `fenced` no longer hold. A change wakes the wait to read only the task's state, and
    the whole record is read once at the end: both reads shared by every waiter of this
    process woken by the same change (EventHub.shared), however many wait.
    """
    deadline = time.monotonic() + seconds
    wait = fenced.wait if fenced else wait_for
    with hub.watch(task_id) as changed:
        snapshot = await visible(store, task_id, user)
        if snapshot.record.state in TERMINAL or seconds <= 0:
            return snapshot
        async with slots.hold(user.name) if slots else contextlib.nullcontext():
            while (remaining := deadline - time.monotonic()) > 0:
                if not await wait(changed, remaining):
                    break
                changed.clear()
                state = await hub.shared(task_id, "state", lambda: _state(store, task_id))
                if state is None:
                    raise TaskNotFoundError(f"task {task_id} not found")  # deleted meanwhile
                if state in TERMINAL:
                    break
        found = await hub.shared(task_id, "record", lambda: store.read(task_id))
        if found is None or not user.sees(found.record.owner):
            raise TaskNotFoundError(f"task {task_id} not found")
        return found


async def _state(store: TaskStore, task_id: str) -> str | None:
    """The task's state alone (None once deleted): what a waiter wakes up for."""
    with redis_errors():
        return text_or_none(await store.redis.hget(store.keys.task(task_id), "state"))


CREATE_RESPONSES: dict[int | str, dict[str, Any]] = {
    **_AUTH,
    409: {"description": "Its range is already reserved"},
    413: {"description": "Request body too large, or params over the bytes a task may hold"},
    422: {"description": "Unknown task, invalid params, or a reused Idempotency-Key"},
    429: {
        "description": "Too many tasks created or waiting, or the user's kept tasks hold "
        "the most bytes they may"
    },
    503: {"description": "RabbitMQ or Redis unavailable"},
}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskOut,
    responses=CREATE_RESPONSES,
)
async def create_task(
    body: TaskCreate,
    user: CurrentUser,
    submitter: SubmitterDep,
    idempotency_key: Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX)] = None,
) -> Response:
    """Validate a task, record it and put it in line (or postpone it with `not_before`)."""
    return await accept(body, user, submitter, idempotency_key)


async def accept(
    body: TaskCreate, user: User, submitter: Submitter, idempotency_key: str | None
) -> Response:
    """Submit the task; the 202 with its Location and ETag (also api.hotpaths' answer)."""
    params = dict(body.params)
    if body.delay_seconds is not None:
        params["delay_seconds"] = body.delay_seconds
    snapshot = await submitter.submit(
        body.name,
        params,
        user,
        body.priority,
        body.not_before,
        idempotency_key,
        callback_url=body.callback_url,
    )
    return accepted(snapshot)


def accepted(snapshot: Snapshot) -> Response:
    """The 202 of a new task: the task, its Location and ETag."""
    tag_task(snapshot.record.id)
    response = task_response(snapshot, status.HTTP_202_ACCEPTED)
    response.headers["Location"] = f"/tasks/{snapshot.record.id}"
    return response


@router.post(
    "/{task_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskOut,
    responses={
        **CREATE_RESPONSES,
        **_NOT_FOUND,
        409: {
            "description": "The task has not ended FAILURE or CANCELLED, was retried already "
            "(`detail.retried_by` names its retry), or its range is taken (a task that ran "
            "keeps its range: clone it with another)"
        },
    },
)
async def retry_task(
    task_id: str,
    store: StoreDep,
    submitter: SubmitterDep,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX)] = None,
) -> Response:
    """Run a task that ended FAILURE or CANCELLED again: a new task of its type, params and
    priority, submitted as `POST /tasks` submits (limits, quota, Idempotency-Key), linked
    both ways (`retry_of`, `retried_by`, and each task's history). A task is retried once:
    a retry of the retry runs it once more. Its callback_url is the original's, checked
    against TASKLINE_WEBHOOK_HOSTS as it stands now."""
    return accepted(await control.retry(store, submitter, task_id, user, idempotency_key))


@router.post(
    "/{task_id}/clone",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=TaskOut,
    responses={**CREATE_RESPONSES, **_NOT_FOUND},
)
async def clone_task(
    task_id: str,
    body: TaskClone,
    store: StoreDep,
    submitter: SubmitterDep,
    user: CurrentUser,
    idempotency_key: Annotated[str | None, Header(max_length=IDEMPOTENCY_KEY_MAX)] = None,
) -> Response:
    """Submit a new task from any task's type and params, with changes (`params` merged in
    as a JSON merge patch): validated and submitted as `POST /tasks` does (a range is
    reserved afresh); the new task names its original in `clone_of`. Its callback_url is
    the original's unless the body gives another (`null`: none), checked as POST /tasks does."""
    record = (await visible(store, task_id, user)).record
    changed = "callback_url" in body.model_fields_set
    callback_url = body.callback_url if changed else record.callback_url
    params = merged(record.params, body.params)
    if body.delay_seconds is not None:
        params["delay_seconds"] = body.delay_seconds
    priority = record.priority if body.priority is None else body.priority
    snapshot = await submitter.submit(
        record.name,
        params,
        user,
        priority,
        body.not_before,
        idempotency_key,
        Link("clone", task_id),
        callback_url=callback_url,
    )
    return accepted(snapshot)


@router.get("", response_model=TaskPage, responses=_AUTH)
async def read_tasks(
    request: Request,
    store: StoreDep,
    settings: SettingsDep,
    submitter: SubmitterDep,
    user: CurrentUser,
    state: Annotated[list[State] | None, Query()] = None,
    name: Annotated[
        list[Annotated[str, StringConstraints(max_length=100, pattern=r"^[A-Za-z0-9_]+$")]] | None,
        Query(),
    ] = None,
    owner: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")] = None,
    created_after: Annotated[str | None, Query(max_length=40, description=_MOMENT)] = None,
    created_before: Annotated[str | None, Query(max_length=40, description=_MOMENT)] = None,
    finished_after: Annotated[str | None, Query(max_length=40, description=_MOMENT)] = None,
    finished_before: Annotated[str | None, Query(max_length=40, description=_MOMENT)] = None,
    id_prefix: Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(pattern=r"^\d{1,18}$")] = None,
    line: Annotated[str | None, Query(max_length=32, pattern=LINE_PATTERN)] = None,
) -> TaskPage:
    """List tasks, newest first, by any of several states (`state=A&state=B`), any of
    several names (`name=a&name=b`) or a line, (admins and viewers) by `owner`, by creation
    and end time ranges (at or after, before), by id prefix and by a searchable param's
    value (`param.text=hello`: exact, of the types that declare it; one at a time); page
    with `cursor`. A page that checked its bound of tasks against an end time range may come
    short (even empty) with a `next_cursor`: go on from it.

    Large params, progress, results and errors are cut short (`truncated`; the task's own
    URL gives the whole), the more so the larger `limit`: a page stays under 1 MiB."""
    # PROGRESS is how a STARTED task with progress reads; both are "running" in the index.
    states = sorted({State.STARTED if s is State.PROGRESS else s for s in state or []})
    names = sorted(set(name or []))
    if names and line:
        # A query that does not validate: FastAPI's own 422 shape, as the document says.
        _refuse("line", line, "filter by name or by line, not both: a task type is on one line")
    if len(names) > settings.search_most_names:
        _refuse(
            "name",
            names,
            f"at most {settings.search_most_names} names (TASKLINE_SEARCH_MOST_NAMES)",
        )
    if owner is not None and not user.sees(owner):
        raise ForbiddenError("only an admin or a viewer lists the tasks of another owner")
    search = Search(
        states=tuple(s.value for s in states),
        names=tuple(names),
        owner=user.owner_filter if owner is None else owner,
        line=line,
        created=(
            _moment("created_after", created_after),
            _moment("created_before", created_before),
        ),
        finished=(
            _moment("finished_after", finished_after),
            _moment("finished_before", finished_before),
        ),
        id_prefix=id_prefix or "",
        params=_param_search(request, submitter.tasks, names, line, settings.search_value_bytes),
    )
    try:
        snapshots, next_cursor = await store.page(search, limit, int(cursor) if cursor else None)
    except TooBroadError as exc:
        _refuse(
            "id_prefix",
            id_prefix,
            f"more than {exc.most} tasks start with it (TASKLINE_SEARCH_MOST_EXAMINED): "
            "give a longer prefix",
        )
    return TaskPage(
        items=[task_out(s, budget(settings, limit)) for s in snapshots],
        next_cursor=None if next_cursor is None else str(next_cursor),
    )


def _param_search(
    request: Request, tasks: Registry, names: list[str], line: str | None, most_bytes: int
) -> tuple[str, ...]:
    """The index family parts of a `param.NAME=value` search (one at most): of each task
    type (of `names`, if given) that declares NAME searchable; a 422 for anything else."""
    asked = [(k, v) for k, v in request.query_params.multi_items() if k.startswith("param.")]
    if not asked:
        return ()
    field, value = asked[0]
    if len(asked) > 1:
        _refuse(field, [k for k, _ in asked], "search by one param's value at a time")
    if line:
        _refuse("line", line, "search by a param's value or by line, not both")
    param = field.removeprefix("param.")
    types = [n for n in (names or sorted(tasks)) if n in tasks and param in tasks[n].searchable]
    if not types:
        among = f" of {', '.join(names)}" if names else ""
        _refuse(field, value, f"{param!r} is no searchable param of a task type{among}")
    if len(value.encode()) > most_bytes:
        _refuse(field, value, f"values longer than {most_bytes} bytes are not indexed")
    return tuple(part(name, param, value) for name in types)


def _moment(field: str, value: str | None) -> int | None:
    """A time bound as epoch ms, from ISO-8601 (UTC unless it says) or seconds since the
    epoch; a 422 for anything else."""
    if value is None:
        return None
    try:
        try:
            return round(float(value) * 1000)
        except ValueError:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
            return round(moment.timestamp() * 1000)
    except (ValueError, OverflowError, OSError):
        _refuse(field, value, "a moment is ISO-8601 (2026-12-05T10:00:00Z) or epoch seconds")


def _refuse(field: str, value: object, message: str) -> NoReturn:
    """A 422 in FastAPI's own shape, for a query that does not validate as a whole."""
    raise RequestValidationError(
        [{"type": "value_error", "loc": ("query", field), "msg": message, "input": value}]
    )


@router.get(
    "/{task_id}",
    response_model=TaskOut,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        429: {"description": "A long poll beyond the user's open event streams and long polls"},
    },
)
async def read_task(
    task_id: str,
    request: Request,
    store: StoreDep,
    hub: HubDep,
    slots: SlotsDep,
    user: CurrentUser,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Hold up to this many seconds until the task has ended (a long poll, "
            "counted with the user's open event streams).",
        ),
    ] = 0,
) -> Response:
    """Read a task: state, progress, place in line, result or error (an admin also reads a
    failure's traceback)."""
    if wait:
        snapshot = await wait_until_terminal(
            store, hub, task_id, user, wait, slots, fence(request, user)
        )
    else:
        snapshot = await visible(store, task_id, user)
    return task_response(snapshot, traceback=user.reads_tracebacks)


@router.get(
    "/{task_id}/result",
    response_model=TaskResult,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        202: {"model": TaskOut, "description": "Not finished yet: the task"},
        409: {"description": "The task failed or was cancelled"},
    },
)
async def read_task_result(
    task_id: str, store: StoreDep, user: CurrentUser
) -> TaskResult | JSONResponse:
    """Read a finished task's result, as often as needed."""
    task = task_out(await visible(store, task_id, user))
    if task.state is State.SUCCESS:
        return TaskResult(id=task.id, state=task.state, result=task.result)
    if task.state in (State.FAILURE, State.CANCELLED):
        raise ConflictError(
            {
                "message": f"task {task_id} ended in {task.state.value}",
                "state": task.state.value,
                "error": task.error.model_dump() if task.error else None,
            }
        )
    return JSONResponse(task.model_dump(mode="json"), status.HTTP_202_ACCEPTED)


@router.get(
    "/{task_id}/pages/{page}",
    response_model=ResultPage,
    responses={**_AUTH, 404: {"description": "Unknown task, or no such page"}},
)
async def read_task_result_page(
    task_id: str, page: Annotated[int, Path(ge=0, le=10_000)], store: StoreDep, user: CurrentUser
) -> ResultPage:
    """Read one page of a large result, as it is produced (pages count from 0)."""
    await visible(store, task_id, user)
    items, pages = await store.page_of_result(task_id, page)
    if items is None:
        raise TaskNotFoundError(f"task {task_id} has no page {page} (it has {pages})")
    return ResultPage(id=task_id, page=page, pages=pages, items=items)


@router.get("/{task_id}/eta", response_model=EtaOut, responses={**_AUTH, **_NOT_FOUND})
async def read_task_eta(
    task_id: str, store: StoreDep, settings: SettingsDep, user: CurrentUser
) -> EtaOut:
    """Say when a waiting task should start and end, or a running one end (null once ended).

    Estimated from the run times of recent runs of each task type in line ahead of it
    (README "How long until mine runs?")."""
    snapshot = await visible(store, task_id, user)
    expected = await Predictor(store, tasks_of(settings), settings).of_task(snapshot)
    return EtaOut.of(task_id, snapshot.record.state, expected)


@router.get(
    "/{task_id}/history", response_model=list[HistoryEntry], responses={**_AUTH, **_NOT_FOUND}
)
async def read_task_history(task_id: str, store: StoreDep, user: CurrentUser) -> list[HistoryEntry]:
    """List every change made to a task: creation, edits, postponements, cancellation."""
    await visible(store, task_id, user)
    return [HistoryEntry(**entry) for entry in await store.history(task_id)]


@router.patch(
    "/{task_id}",
    response_model=TaskOut,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        409: {"description": "The task is not waiting, or the range its new params need is taken"},
        412: {"description": "If-Match does not match the task's ETag"},
        413: {"description": "The new params take more bytes than a task may hold"},
        429: {
            "description": "Too many creations and edits this minute, or no room left in "
            "the bytes the user's kept tasks may hold"
        },
    },
)
async def update_task(
    task_id: str,
    body: TaskPatch,
    store: StoreDep,
    submitter: SubmitterDep,
    settings: SettingsDep,
    user: CurrentUser,
    response: Response,
    if_match: Annotated[str | None, Header(max_length=100)] = None,
) -> TaskOut:
    """Edit, re-prioritise or postpone a waiting task (`not_before: null` brings it back)."""
    current = (await visible(store, task_id, user)).record
    given = body.model_fields_set
    tasks = submitter.tasks
    params = validate_params(tasks, current.name, body.params) if "params" in given else None
    postpone: Postpone
    if "not_before" not in given:
        postpone = "keep"
    else:
        postpone = "clear" if body.not_before is None else "set"
    change = {
        "at": now_iso(),
        "change": "edited",
        **body.model_dump(mode="json", exclude_unset=True),
    }
    if params is not None:
        # History keeps what changed and a digest, not a copy (params may be 100k characters).
        changed = sorted(
            k
            for k in params.keys() | current.params.keys()
            if params.get(k) != current.params.get(k)
        )
        change["params"] = {
            "changed": changed,
            "sha256": hashlib.sha256(dumps(params).encode()).hexdigest(),
        }
    version = expected_version(if_match)
    reserve = reservation(tasks, current.name, params) if params is not None else None
    families = None
    if params is not None and current.name in tasks:  # its searchable params' values anew
        found = searched(
            current.name, tasks[current.name].searchable, params, settings.search_value_bytes
        )
        families = store.keys.families(current.name, current.owner, current.line, found)
    outcome = await store.change(
        store.of(current.line).edit(
            task_id,
            version,
            params,
            body.priority if "priority" in given else None,
            postpone,
            moment(body.not_before),
            change,
            reserve,
            editor=user.name,
            per_minute=settings.creations_per_minute,
            max_task_bytes=settings.max_task_bytes,
            max_user_bytes=settings.max_user_bytes,
            families=families,
        )
    )
    match outcome:
        case Unknown():
            raise TaskNotFoundError(f"task {task_id} not found")
        case Limited(retry_after):
            raise TooManyRequestsError(
                f"more than {settings.creations_per_minute} creations and edits a minute",
                headers={"Retry-After": str(retry_after)},
            )
        case Conflict(state):
            raise ConflictError(f"task {task_id} is {state}: only waiting tasks can be changed")
        case VersionMismatch(now):
            raise PreconditionFailedError(
                f'task {task_id} was changed meanwhile (its ETag is now "v{now}")'
            )
        case Overlap():
            assert params is not None  # an overlap answers a range asked for
            wanted = described_range(tasks, current.name, params)
            raise await overlap_error(store, wanted, outcome, user)
        case Kept(attempts):
            held = described_range(tasks, current.name, current.params)
            raise kept_error(task_id, attempts, held)
        case TooLarge():
            raise too_large_error(outcome)
        case OverQuota():
            raise over_quota_error(outcome)
    snapshot = await visible(store, task_id, user)
    if outcome.turn:
        # The change is durable and the turn sits in the outbox: if RabbitMQ is away the
        # scheduler publishes it later, so the edit still succeeds.
        try:
            await submitter.publish_turn(snapshot, outcome.turn)
        except UnavailableError:
            pass
    response.headers["ETag"] = snapshot.record.etag
    return task_out(snapshot)


def expected_version(if_match: str | None) -> int | None:
    """The version an If-Match names: None for none or `*` (any), -1 for one that is no
    version of ours (so it matches none)."""
    if if_match is None or if_match.strip() == "*":
        return None
    text = if_match.strip().removeprefix("W/").strip('"').removeprefix("v")
    return int(text) if text.isdecimal() and len(text) < 19 else -1


@router.post(
    "/{task_id}/cancel",
    response_model=TaskOut,
    responses={**_AUTH, **_NOT_FOUND, 409: {"description": "The task already ended"}},
)
async def cancel_task(
    task_id: str, store: StoreDep, hub: HubDep, settings: SettingsDep, user: CurrentUser
) -> TaskOut:
    """Cancel a task: a waiting one never runs, a running one is stopped within a second."""
    if isinstance(await control.cancel(store, settings, task_id, user), Cancelling):
        return task_out(await wait_until_terminal(store, hub, task_id, user, CANCEL_ANSWER_SECONDS))
    return task_out(await visible(store, task_id, user))


@router.delete(
    "/{task_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**_AUTH, **_NOT_FOUND, 409: {"description": "The task is running"}},
)
async def delete_task(task_id: str, store: StoreDep, user: CurrentUser) -> Response:
    """Forget a task that is not running: record, result, history and indexes."""
    await control.delete(store, task_id, user)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


async def task_events(
    store: TaskStore,
    hub: EventHub,
    task_id: str,
    user: User,
    last_event_id: str | None,
    fenced: Fence,
) -> AsyncGenerator[tuple[str | None, str, dict[str, Any]], None]:
    """(id, kind, data) for each change of a task, ending after a terminal state, or with
    UnauthorizedError once the credentials behind `fenced` no longer hold.

    A new watcher first gets the current state; one that resumes from an event id gets every
    event after it (none, and the end, if the task had ended before). Keep-alives come as
    (None, "keepalive", {}).
    """
    with hub.watch(task_id) as changed:
        if last_event_id is None:
            last_id = await store.last_event_id(task_id)
            task = task_out(await visible(store, task_id, user))
            yield last_id, "state", task.model_dump(mode="json")
            if task.state in TERMINAL:
                return
            ended = False
        else:
            # Read before the events: if the task had ended, they are all written already.
            ended = (await visible(store, task_id, user)).record.state in TERMINAL
            last_id = last_event_id
        while True:
            changed.clear()
            # Watchers at the same place share the read (most are, once they caught up).
            news = functools.partial(store.events_after, task_id, last_id)
            for event_id, fields in await hub.shared(task_id, f"events after {last_id}", news):
                last_id = event_id
                data = {"id": task_id, **event_data(fields)}
                kind = "progress" if data["state"] == State.PROGRESS else "state"
                yield event_id, kind, data
                if data["state"] in TERMINAL:
                    return
            if ended:
                return
            if not await fenced.wait(changed, KEEPALIVE_SECONDS):
                yield None, "keepalive", {}


async def _stream_start(
    task_id: str,
    user: CurrentUser,
    store: StoreDep,
    slots: SlotsDep,
    last_event_id: Annotated[EventId | None, Header()] = None,
) -> AsyncIterator[str | None]:
    """Where the stream resumes, once the task is known (404) and the user holds a stream
    slot until the stream ends (429): both answered before the stream starts."""
    await visible(store, task_id, user)
    async with slots.hold(user.name):
        yield last_event_id


@router.get(
    "/{task_id}/events",
    response_class=EventSourceResponse,
    responses={
        **_AUTH,
        **_NOT_FOUND,
        429: {"description": "The user has too many event streams open"},
    },
)
async def stream_task_events(
    task_id: str,
    request: Request,
    resume_after: Annotated[str | None, Depends(_stream_start)],
    user: CurrentUser,
    store: StoreDep,
    hub: HubDep,
) -> AsyncIterator[ServerSentEvent]:
    """Stream a task's state and progress changes as Server-Sent Events, until it ends (or
    the bearer token it was opened with is revoked or expires)."""
    events = task_events(store, hub, task_id, user, resume_after, fence(request, user))
    try:
        async for event_id, kind, data in events:
            if kind == "keepalive":
                yield ServerSentEvent(comment="keep-alive")
            else:
                yield ServerSentEvent(id=event_id, event=kind, data=data)
    except UnauthorizedError:
        return  # the stream just ends: a client that reconnects is refused (401)


async def _websocket_user(websocket: WebSocket) -> User:
    """Browsers cannot set headers on a WebSocket: a token may come as `access_token`."""
    token = bearer_token(websocket)
    if not token:
        raise UnauthorizedError("send a bearer token (header or access_token)")
    return await token_user(websocket, token)


def _websocket_resume_point(websocket: WebSocket) -> str | None:
    text = websocket.query_params.get("last_event_id")
    try:
        return None if text is None else resume_point(text)
    except ValueError as exc:
        raise InvalidParamsError(f"last_event_id: {exc}") from exc


@router.websocket("/{task_id}/ws")
async def watch_task(websocket: WebSocket, task_id: str) -> None:
    """Send a task's state and progress changes over a WebSocket, until it ends.

    Without valid credentials (or when they cannot be checked) the handshake is refused, an
    HTTP 403: no socket opens for an unknown caller. Otherwise the socket opens, and any other
    refusal closes it with 4000 + the status the SSE route answers and the detail as the
    reason (4404, 4422 for a bad `last_event_id`, 4429, 4503), as does the revocation or
    expiry of its bearer token while it is open (4401): a browser sees close codes,
    not the status of a refused handshake. While open it also reads, so a client that leaves
    is noticed at once (uvicorn's pings find one that vanished), and it sends a keep-alive
    message after 15 s without events.
    """
    state = websocket.app.state
    try:
        user = await _websocket_user(websocket)
        await websocket.accept()
        resume_after = _websocket_resume_point(websocket)
        await visible(state.store, task_id, user)
        async with state.slots.hold(user.name):
            events = task_events(
                state.store, state.hub, task_id, user, resume_after, fence(websocket, user)
            )
            if await _send_until_gone(websocket, events):
                await websocket.close()
    except TasklineError as exc:
        if websocket.application_state == WebSocketState.CONNECTING:
            await websocket.close(code=status.WS_1008_POLICY_VIOLATION)  # before accept: 403
        else:
            await websocket.close(code=4000 + exc.status_code, reason=_close_reason(exc.detail))
    except WebSocketDisconnect:
        pass


async def _send_until_gone(
    websocket: WebSocket, events: AsyncGenerator[tuple[str | None, str, dict[str, Any]], None]
) -> bool:
    """Send every event while reading the client; True once all are sent, False if the
    client left first (the sending then stops at once)."""

    async def send_all() -> None:
        # Closed however the sending ends: the task stops being watched at once.
        async with contextlib.aclosing(events) as stream:
            async for event_id, kind, data in stream:
                await websocket.send_json({"id": event_id, "event": kind, "data": data})

    async def read_until_gone() -> None:
        while (await websocket.receive())["type"] != "websocket.disconnect":
            pass  # what a client sends is not read for meaning

    sending = asyncio.create_task(send_all())
    reading = asyncio.create_task(read_until_gone())
    try:
        await asyncio.wait((sending, reading), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sending, reading):
            task.cancel()
        await asyncio.gather(sending, reading, return_exceptions=True)
    if not reading.cancelled():
        return False  # it ended by itself: the client left
    sending.result()  # a TasklineError or a disconnect met while sending
    return True


def _close_reason(detail: Any) -> str:
    """The detail as a close reason: at most 123 bytes of UTF-8 (a close frame holds no more)."""
    return str(detail).encode("utf-8", "replace")[:123].decode("utf-8", "ignore")
