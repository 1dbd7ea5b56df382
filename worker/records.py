"""The task record in Redis: key layout, states and field encoding, shared by API and worker.

The record (a hash) is the truth about a task; the RabbitMQ message is only its turn in line.
All changes of state go through worker.transitions.
"""

import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class State(StrEnum):
    """Lifecycle of a task as users see it."""

    QUEUED = "QUEUED"
    SCHEDULED = "SCHEDULED"
    STARTED = "STARTED"
    PROGRESS = "PROGRESS"
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    CANCELLED = "CANCELLED"


TERMINAL = frozenset({State.SUCCESS, State.FAILURE, State.CANCELLED})
WAITING = frozenset({State.QUEUED, State.SCHEDULED})

# Header carried by each message: the record's turn it was published for.
TURN_HEADER = "taskline_turn"


class Keys:
    """Redis key names under one prefix, so that deployments and tests never collide."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    def task(self, task_id: str) -> str:
        return f"{self.prefix}task:{task_id}"

    def meta(self, task_id: str) -> str:
        """Celery's result-backend key (Celery adds the same prefix as `global_keyprefix`)."""
        return f"{self.prefix}celery-task-meta-{task_id}"

    def events(self, task_id: str) -> str:
        """The task's event stream (state and progress changes)."""
        return f"{self.prefix}events:{task_id}"

    def pages(self, task_id: str) -> str:
        """Pages of a large result, a JSON list each."""
        return f"{self.prefix}pages:{task_id}"

    def history(self, task_id: str) -> str:
        return f"{self.prefix}history:{task_id}"

    def index(
        self, state: str | None = None, name: str | None = None, owner: str | None = None
    ) -> str:
        """The sorted set of task ids (score: creation sequence) for a filter.

        Families: all tasks, by name, by owner, by owner and name; each has an `all` set and
        one set per state (kept by worker.transitions).
        """
        family = f"{self.prefix}index:"
        if owner is not None:
            family += f"owner:{owner}:"
        if name:
            family += f"name:{name}:"
        return f"{family}state:{state}" if state else f"{family}all"

    @property
    def line(self) -> str:
        """Waiting tasks in the order they will run."""
        return f"{self.prefix}line"

    @property
    def scheduled(self) -> str:
        """Postponed tasks by due time (ms)."""
        return f"{self.prefix}scheduled"

    @property
    def outbox(self) -> str:
        """Tasks whose message is being published, by when it was attempted (ms)."""
        return f"{self.prefix}outbox"

    @property
    def expiry(self) -> str:
        """Finished tasks by when they are to be forgotten (ms)."""
        return f"{self.prefix}expiry"

    @property
    def cancelling(self) -> str:
        """Running tasks asked to stop, by when they will be stopped hard (ms)."""
        return f"{self.prefix}cancelling"

    @property
    def channel(self) -> str:
        """Pub/sub channel announcing the id of each task that has a new event."""
        return f"{self.prefix}events"

    @property
    def workers(self) -> str:
        """Workers by when they were last seen (ms)."""
        return f"{self.prefix}workers"


def now_iso() -> str:
    """The current time as ISO-8601 UTC with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def to_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def dumps(value: Any) -> str:
    """Compact JSON for record fields; '' for None."""
    return "" if value is None else json.dumps(value, separators=(",", ":"))


def encode(fields: dict[str, Any]) -> dict[str, str]:
    """Encode record fields for HSET: JSON for structures, text for the rest, '' for None."""
    out = {}
    for key, value in fields.items():
        if value is None:
            out[key] = ""
        elif isinstance(value, dict | list):
            out[key] = dumps(value)
        else:
            out[key] = str(value)
    return out
