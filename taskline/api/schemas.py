"""Request and response models: the shapes of the HTTP contract."""

import json
import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
)

from taskline.core.estimates import Expected
from taskline.core.previews import cut
from taskline.core.records import Snapshot, State, iso
from taskline.core.settings import Settings
from taskline.core.webhooks import MAX_URL_LENGTH
from taskline.declaring import MAX_DELAY_SECONDS


def _in_utc(moment: datetime) -> datetime:
    """The moment in UTC; one that has no UTC form (year 1 or 9999 shifted) is refused."""
    try:
        return moment.astimezone(UTC)
    except OverflowError as exc:
        raise ValueError("not_before is out of range") from exc


def _seconds(value: object) -> object:
    """A number as seconds since the epoch, whatever its size (pydantic alone reads one above
    2e10 as milliseconds); past the years 1–9999 it is refused."""
    if isinstance(value, str):  # a number in a string, too ("1700000000")
        try:
            value = float(value)
        except ValueError:
            return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError) as exc:
            raise ValueError("not_before is out of range (seconds since the epoch)") from exc
    return value


NotBefore = Annotated[AwareDatetime, BeforeValidator(_seconds), AfterValidator(_in_utc)]

# The failures of retried attempts a record keeps unless TASKLINE_RETRY_ERRORS_KEPT says.
ERRORS_KEPT = Settings.model_fields["retry_errors_kept"].default

# A Redis stream id: milliseconds and a sequence number, each a 64-bit unsigned integer.
STREAM_ID_MAX = 2**64 - 1
_EVENT_ID = r"([0-9]{1,20})-([0-9]{1,20})"


def resume_point(event_id: str) -> str:
    """An event id to resume after, in its plain form; ValueError unless Redis could ever
    hold an event after it (a part past 64 bits would make Redis refuse the read)."""
    match = re.fullmatch(_EVENT_ID, event_id)
    if match is None:
        raise ValueError("an event id is `milliseconds-sequence`, as the events carry")
    ms, seq = int(match[1]), int(match[2])
    if ms > STREAM_ID_MAX or seq > STREAM_ID_MAX:
        raise ValueError(f"each part of an event id is at most {STREAM_ID_MAX}")
    if ms == seq == STREAM_ID_MAX:
        raise ValueError("no event can follow the largest event id")
    return f"{ms}-{seq}"


EventId = Annotated[
    str,
    Field(
        pattern=f"^{_EVENT_ID}$",
        description="The id of the last event seen: the stream resumes after it.",
    ),
    AfterValidator(resume_point),
]


def event_data(fields: dict[str, str]) -> dict[str, Any]:
    """A stored event's fields as an event's data: JSON fields decoded, attempts a number."""
    data: dict[str, Any] = dict(fields)
    for key in ("progress", "error"):
        if key in data:
            data[key] = json.loads(data[key])
    if "attempts" in data:
        data["attempts"] = int(data["attempts"])
    if "truncated" in data:  # a large progress, cut short (the task's own read has it whole)
        data["truncated"] = True
    return data


class TaskCreate(BaseModel):
    """A task to run: the name of a loaded task type and its parameters (the OpenAPI
    document's examples come from the loaded types' own)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(max_length=100, description="A task type of GET /task-types.")
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(5, ge=0, le=9, strict=True, description="0–9, higher runs first.")
    delay_seconds: float | None = Field(
        None, ge=0, le=MAX_DELAY_SECONDS, description="Shorthand for `params.delay_seconds`."
    )
    not_before: NotBefore | None = Field(
        None, description="Postpone the task until then (state SCHEDULED)."
    )
    callback_url: str | None = Field(
        None,
        max_length=MAX_URL_LENGTH,
        description="An http(s) URL POSTed the task, signed, when it ends; its host must be "
        "on TASKLINE_WEBHOOK_HOSTS (422 otherwise).",
    )


class TaskPatch(BaseModel):
    """Changes to a waiting task; fields left out stay as they are."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"priority": 9},
                {"params": {"digits": 8}},
                {"not_before": "2026-11-23T19:00:00Z"},
                {"not_before": None},
            ]
        },
    )

    params: dict[str, Any] | None = Field(None, description="New params (replace the old).")
    priority: int | None = Field(None, ge=0, le=9, strict=True)
    not_before: NotBefore | None = Field(
        None, description="Postpone until then; `null` brings a postponed task back now."
    )


class TaskClone(BaseModel):
    """A new task from another's type and params, with changes; left out, a field is the
    original's (`not_before`: none, it runs now)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{}, {"params": {"digits": 8}, "priority": 9}, {"params": {"top": None}}]
        },
    )

    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Changes to the original's params, as a JSON merge patch (RFC 7386): a "
        "key given replaces the original's value (objects are merged), `null` removes it (its "
        "default applies). The result is validated as a submission's params are.",
    )
    priority: int | None = Field(None, ge=0, le=9, strict=True, description="0–9.")
    delay_seconds: float | None = Field(
        None, ge=0, le=MAX_DELAY_SECONDS, description="Shorthand for `params.delay_seconds`."
    )
    not_before: NotBefore | None = Field(
        None, description="Postpone the new task until then (state SCHEDULED)."
    )
    callback_url: str | None = Field(
        None,
        max_length=MAX_URL_LENGTH,
        description="Another callback_url, checked as `POST /tasks` checks it; `null`: none. "
        "Left out, the original's.",
    )


class Progress(BaseModel):
    """Where a running task is."""

    percent: float
    current: float
    total: float
    intermediate: Any = None
    model_config = ConfigDict(extra="allow")


class ErrorInfo(BaseModel):
    """Why a task failed."""

    type: str
    message: str


class FailureInfo(ErrorInfo):
    """Why a task failed; to an admin reading the task, the end of its traceback too."""

    traceback: str | None = Field(
        None,
        exclude_if=lambda value: value is None,
        description="Admins only, on `GET /tasks/{id}`: the end of the failed run's traceback "
        "(at most `TASKLINE_TRACEBACK_BYTES`, marked `[… cut]` when its start was cut); left "
        "out for everyone else, and when the run left none (killed, refused before running).",
    )


class AttemptError(ErrorInfo):
    """Why an earlier attempt failed, before the task was retried."""

    attempt: int = Field(description="The attempt that failed (1 for the first run).")
    at: str = Field(description="When it failed.")


class Links(BaseModel):
    self: str
    result: str
    events: str


class TaskOut(BaseModel):
    """A task as users see it; times are ISO-8601 UTC with milliseconds."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c1c1e-8a6f-4c55-9d1a-2b1f2f9c3e10",
                    "name": "word_report",
                    "params": {"text": "the cat sat", "top": 3, "delay_seconds": 0},
                    "state": "PROGRESS",
                    "priority": 5,
                    "owner": "",
                    "line": "default",
                    "queued_at": "2026-11-23T18:00:00.123Z",
                    "not_before": None,
                    "started_at": "2026-11-23T18:00:01.002Z",
                    "finished_at": None,
                    "queue_position": None,
                    "progress": {
                        "percent": 37.5,
                        "current": 3750000,
                        "total": 10000000,
                        "intermediate": 2,
                    },
                    "result": None,
                    "error": None,
                    "errors": [],
                    "attempts": 1,
                    "worker": "celery@host:4242",
                    "lease_renewed_at": "2026-11-23T18:00:03.010Z",
                    "links": {
                        "self": "/tasks/6f1c1c1e-8a6f-4c55-9d1a-2b1f2f9c3e10",
                        "result": "/tasks/6f1c1c1e-8a6f-4c55-9d1a-2b1f2f9c3e10/result",
                        "events": "/tasks/6f1c1c1e-8a6f-4c55-9d1a-2b1f2f9c3e10/events",
                    },
                }
            ]
        }
    )

    id: str
    name: str
    params: dict[str, Any]
    state: State
    priority: int
    owner: str
    line: str | None = Field(
        None,
        description="The line it waits and runs on (TASKLINE_LINES); null for a task made "
        "before lines, which is on the main line.",
    )
    queued_at: str | None
    not_before: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    queue_position: int | None = None
    progress: Progress | None = None
    result: Any = None
    error: FailureInfo | None = None
    errors: list[AttemptError] = Field(
        default_factory=list,
        description="The failures of earlier attempts that its retry policy retried, oldest "
        f"first (the last `TASKLINE_RETRY_ERRORS_KEPT`, {ERRORS_KEPT} by default); while it "
        "waits for the next attempt, `state` is SCHEDULED until `not_before`.",
    )
    attempts: int = Field(0, description="Runs so far: retries and reruns of lost runs count.")
    worker: str | None = Field(
        None, description="Running: the worker process that runs it (host:pid)."
    )
    lease_renewed_at: str | None = Field(
        None,
        description="Running: when its run last renewed its lease (every 2 s while alive; "
        "the lease lapses 10 s after the last renewal, and the task then runs again).",
    )
    retry_of: str | None = Field(
        None, description="The task this one runs again (`POST /tasks/{id}/retry`)."
    )
    retried_by: str | None = Field(
        None, description="The task that runs this one again (`POST /tasks/{id}/retry`)."
    )
    clone_of: str | None = Field(
        None, description="The task this one was cloned from (`POST /tasks/{id}/clone`)."
    )
    callback_url: str | None = Field(
        None,
        description="POSTed the task, signed, when it ends (see README, Webhooks); a retry "
        "keeps it, a clone keeps it unless its body changes it.",
    )
    links: Links
    truncated: bool = Field(
        False,
        description="Listings and events only: params, progress, result or error were cut "
        "short; `links.self` and `links.result` give the whole.",
    )


class ResultPage(BaseModel):
    """One page of a large result (serial generations)."""

    id: str
    page: int
    pages: int
    items: list[Any]


class TaskResult(BaseModel):
    """The outcome of a finished task."""

    id: str
    state: State
    result: Any


class TaskType(BaseModel):
    """One task type, as its package declares it."""

    name: str
    description: str
    params_schema: dict[str, Any]
    result_schema: dict[str, Any] | None = None
    soft_time_limit: int
    time_limit: int
    max_attempts: int = Field(1, description="Runs in all, retries included.")
    reserves: str | None = Field(None, description="The ledger its exclusive range is in.")


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    """Whether each dependency answers."""

    ready: bool
    broker: bool
    redis: bool
    workers: int = Field(description="Consumers attached to the lines' queues, all together.")
    lines: dict[str, int] = Field(
        default_factory=dict,
        description="Consumers attached to each line's queue, by line; ready when each has one.",
    )


class TaskPage(BaseModel):
    """One page of tasks, newest first."""

    items: list[TaskOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class EtaOut(BaseModel):
    """When a task should start and end (README "How long until mine runs?")."""

    id: str
    state: State
    expected_start: str | None = Field(
        description="ISO-8601 UTC; when it started for a running task; null once it ended."
    )
    expected_end: str | None = Field(description="ISO-8601 UTC; null once it ended.")
    ahead: int | None = Field(
        None, description="Tasks that run before it (the running one included)."
    )
    extrapolated: bool = Field(
        False,
        description="More tasks are ahead than TASKLINE_ESTIMATE_AHEAD: the rest are taken "
        "at the mean of those counted.",
    )

    @classmethod
    def of(cls, task_id: str, state: State, expected: Expected | None) -> "EtaOut":
        if expected is None:
            return cls(id=task_id, state=state, expected_start=None, expected_end=None)
        return cls(
            id=task_id,
            state=state,
            expected_start=iso(expected.start),
            expected_end=iso(expected.end),
            ahead=expected.ahead,
            extrapolated=expected.extrapolated,
        )


class QueueOut(BaseModel):
    """A line as its worker will take it."""

    line: str = Field("default", description="The line (TASKLINE_LINES).")
    queue: str = Field("", description="Its RabbitMQ queue.")
    depth: int = Field(description="Tasks waiting their turn.")
    scheduled: int = Field(description="Tasks postponed until a later time.")
    running: list[TaskOut]
    next: list[TaskOut] = Field(description="The next tasks, in the order they will run.")
    workers: list[str] = Field(description="Workers seen consuming in the last seconds.")
    consumers: int | None = Field(description="Consumers RabbitMQ reports on the queue.")
    expected: list[EtaOut] = Field(
        default_factory=list,
        description="When the running and the next tasks listed should start and end.",
    )


class LinesOut(BaseModel):
    """Every line, in the order TASKLINE_LINES gives them."""

    lines: list[QueueOut]


class MemoryUse(BaseModel):
    total: int = Field(description="Bytes of memory of the host.")
    used: int
    percent: float


class DiskUse(BaseModel):
    path: str = Field(description="The filesystem measured (its mount point).")
    total: int = Field(description="Bytes.")
    used: int
    percent: float


class WorkerOut(BaseModel):
    """A worker as it reported itself at its last heartbeat."""

    node: str = Field(description="Celery's node name (`name@host`), unique per worker.")
    line: str = Field("", description="The line it consumes.")
    queue: str = Field(description="The RabbitMQ queue of its line.")
    active: bool = Field(
        description="It runs its line (RabbitMQ's single active consumer); the others of the "
        "line wait as standbys and take over when it leaves."
    )
    host: str
    pid: int = Field(description="Its main process.")
    task_id: str | None = Field(
        description="The task it runs (or holds, waiting for a lost run's lease to lapse); "
        "null when idle, or when the task is another user's."
    )
    started_at: str = Field(description="When it attached to the line.")
    last_heartbeat: str = Field(description="Its report is dropped once this is too old.")
    last_received: str | None = Field(description="When it last received a task message.")
    cpu_percent: float = Field(description="Its host's CPU load over the last heartbeat.")
    memory: MemoryUse
    disk: DiskUse


class WorkersOut(BaseModel):
    """Every worker seen lately, the active one first."""

    workers: list[WorkerOut]
    active: str | None = Field(
        description="The node of the active worker of the line asked for (by default the "
        "main line), if one is known."
    )
    expiry_seconds: float = Field(
        description="A worker silent this long (killed, its host lost) drops out of the list."
    )


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    at: str
    change: Any


class TaskId(BaseModel):
    """The id of a created task (the seed projects' answer)."""

    id: str


def task_out(snapshot: Snapshot, cut_to: int | None = None, *, traceback: bool = False) -> TaskOut:
    """Build the resource from the Redis record and Celery's result; with `cut_to`, its
    params, progress, result and error cut to about that many bytes each (api.preview);
    with `traceback` (an admin's read of one task), a failure's traceback in its error."""
    record, meta = snapshot.record, snapshot.meta
    state = record.state
    progress = result = None
    running = state is State.STARTED
    if running and record.progress:
        state = State.PROGRESS
        progress = record.progress
    elif state is State.SUCCESS and meta and meta.get("status") == State.SUCCESS:
        result = meta["result"]
    params, error, errors, truncated = record.params, record.error, record.errors, False
    if cut_to is not None:
        params, error, progress, result, errors, truncated = _cut(
            cut_to, params, error, progress, result, errors
        )
    if traceback and error is not None and record.traceback:
        error = {**error, "traceback": record.traceback}
    link = f"/tasks/{record.id}"
    return TaskOut(
        id=record.id,
        name=record.name,
        params=params,
        state=state,
        priority=record.priority,
        owner=record.owner,
        line=record.line or None,
        queued_at=record.queued_at,
        not_before=record.not_before,
        started_at=record.started_at,
        finished_at=record.finished_at,
        queue_position=snapshot.position,
        progress=progress,
        result=result,
        error=error,
        errors=errors,
        attempts=record.attempts,
        worker=record.runner if running else None,
        lease_renewed_at=record.renewed_at if running else None,
        retry_of=record.retry_of,
        retried_by=record.retried_by,
        clone_of=record.clone_of,
        callback_url=record.callback_url,
        links=Links(self=link, result=f"{link}/result", events=f"{link}/events"),
        truncated=truncated,
    )


def _cut(limit: int, *parts: Any) -> tuple[Any, ...]:
    """Each part cut to `limit` bytes, and whether any was."""
    found = [cut(part, limit) if part is not None else (None, False) for part in parts]
    return (*(value for value, _ in found), any(was_cut for _, was_cut in found))
