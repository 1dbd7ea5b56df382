"""Request and response models: the shapes of the HTTP contract."""

import json
from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from api.store import Snapshot
from worker.catalog import MAX_DELAY_SECONDS, TaskName
from worker.records import State

_LEIBNIZ_EXAMPLE = {"name": "leibniz_pi", "params": {"digits": 6}}


class TaskCreate(BaseModel):
    """A task to run: a catalogue name and its parameters."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                _LEIBNIZ_EXAMPLE,
                {"name": "reverse", "params": {"text": "hello"}, "delay_seconds": 10},
                {
                    "name": "generate_serials",
                    "params": {"code_model": "0111", "number": 1, "count": 10},
                },
            ]
        },
    )

    name: TaskName
    params: dict[str, Any] = Field(default_factory=dict)
    priority: int = Field(5, ge=0, le=9, description="0–9, higher runs first.")
    delay_seconds: float | None = Field(
        None, ge=0, le=MAX_DELAY_SECONDS, description="Shorthand for `params.delay_seconds`."
    )
    not_before: AwareDatetime | None = Field(
        None, description="Postpone the task until then (state SCHEDULED)."
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
    priority: int | None = Field(None, ge=0, le=9)
    not_before: AwareDatetime | None = Field(
        None, description="Postpone until then; `null` brings a postponed task back now."
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
                    "name": "leibniz_pi",
                    "params": {"digits": 6, "delay_seconds": 0, "method": "series"},
                    "state": "PROGRESS",
                    "priority": 5,
                    "owner": "",
                    "queued_at": "2026-11-23T18:00:00.123Z",
                    "not_before": None,
                    "started_at": "2026-11-23T18:00:01.002Z",
                    "finished_at": None,
                    "queue_position": None,
                    "progress": {
                        "percent": 37.5,
                        "current": 3750000,
                        "total": 10000000,
                        "intermediate": "3.14159",
                    },
                    "result": None,
                    "error": None,
                    "attempts": 1,
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
    queued_at: str | None
    not_before: str | None = None
    started_at: str | None = None
    finished_at: str | None = None
    queue_position: int | None = None
    progress: Progress | None = None
    result: Any = None
    error: ErrorInfo | None = None
    attempts: int = 0
    links: Links


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
    """One entry of the catalogue."""

    name: str
    description: str
    params_schema: dict[str, Any]
    soft_time_limit: int
    time_limit: int


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    """Whether each dependency answers."""

    ready: bool
    broker: bool
    redis: bool
    workers: int = Field(description="Consumers attached to the task queue.")


class TaskPage(BaseModel):
    """One page of tasks, newest first."""

    items: list[TaskOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page.")


class QueueOut(BaseModel):
    """The line as the worker will take it."""

    depth: int = Field(description="Tasks waiting their turn.")
    scheduled: int = Field(description="Tasks postponed until a later time.")
    running: list[TaskOut]
    next: list[TaskOut] = Field(description="The next tasks, in the order they will run.")
    workers: list[str] = Field(description="Workers seen consuming in the last seconds.")
    consumers: int | None = Field(description="Consumers RabbitMQ reports on the queue.")


class HistoryEntry(BaseModel):
    model_config = ConfigDict(extra="allow")
    at: str
    change: Any


class SerialCheck(BaseModel):
    """What Taskline knows of a serial number."""

    serial: str
    genuine: bool = Field(description="Well formed, and its checksum matches its model and number.")
    code_model: str | None = None
    number: int | None = None
    issued: bool = Field(description="Its number was handed out for its model by a task.")
    task_id: str | None = Field(None, description="The task it was issued to (if yours).")


class TaskId(BaseModel):
    """The id of a created task (the seed projects' answer)."""

    id: str


class SeedTask(BaseModel):
    """Seed 1's body: a task name, its arguments and a delay."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "reverse", "qwargs": {"text": "hello"}, "delay_seconds": 10}]
        }
    )

    name: TaskName
    qwargs: dict[str, Any] = Field(default_factory=dict)
    delay_seconds: float = Field(0, ge=0, le=MAX_DELAY_SECONDS)


class SerialRequest(BaseModel):
    """Seed 4's body."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code_model": "0111", "number": 1, "count": 10}]}
    )

    code_model: str
    number: int
    count: int


def task_out(snapshot: Snapshot) -> TaskOut:
    """Build the resource from the Redis record and Celery's result."""
    record, meta = snapshot.record, snapshot.meta
    task_id = record["id"]
    state = State(record["state"])
    progress = result = None
    if state is State.STARTED and record.get("progress"):
        state = State.PROGRESS
        progress = json.loads(record["progress"])
    elif state is State.SUCCESS and meta and meta.get("status") == State.SUCCESS:
        result = meta["result"]
    link = f"/tasks/{task_id}"
    return TaskOut(
        id=task_id,
        name=record["name"],
        params=json.loads(record["params"]),
        state=state,
        priority=int(record.get("priority") or 5),
        owner=record.get("owner", ""),
        queued_at=record.get("queued_at") or None,
        not_before=record.get("not_before") or None,
        started_at=record.get("started_at") or None,
        finished_at=record.get("finished_at") or None,
        queue_position=snapshot.position,
        progress=progress,
        result=result,
        error=json.loads(record["error"]) if record.get("error") else None,
        attempts=int(record.get("attempts") or 0),
        links=Links(self=link, result=f"{link}/result", events=f"{link}/events"),
    )
