"""The task record in Redis: key layout, states, and the typed record parsed in one place.

The record (a hash) is the truth about a task; the RabbitMQ message is only its turn in line.
All changes of state go through core.transitions.
"""

import hashlib
import json
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from taskline.core.lines import Line


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

# User names: safe in Redis keys (no `:`) and in logs. The API refuses to start with others.
USER_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")

# Header carried by each message: the record's turn it was published for.
TURN_HEADER = "taskline_turn"


class Keys:
    """Redis key names under one prefix, so that deployments and tests never collide.

    Keys of one line (core.lines) name that line's sets: the line of waiting tasks, the
    outbox, the postponed, the finished and the cancelling tasks. The main line's are the
    names of before lines, so an existing deployment's tasks stay where they were; without a
    line, these are the main line's keys too.
    """

    def __init__(self, prefix: str, line: Line | None = None) -> None:
        self.prefix = prefix
        self.line_name = "" if line is None else line.name
        # the main line's (a record made before lines is on it), or keys without a line
        self.main = line is None or line.main
        self._sets = f"{prefix}lines:{line.name}:" if line and not line.main else prefix

    def task(self, task_id: str) -> str:
        return f"{self.prefix}task:{task_id}"

    def lease(self, task_id: str) -> str:
        """Held by a task's live run ("token runner"); lapses by itself when the run dies."""
        return f"{self.prefix}lease:{task_id}"

    def of_task(self, task_id: str) -> list[str]:
        """The keys every transition script gets first, in the order core/lua/task.lua names."""
        return [
            self.task(task_id),
            self.events(task_id),
            self.history(task_id),
            self.line,
            self.outbox,
            self.scheduled,
            self.expiry,
            self.cancelling,
            self.lease(task_id),
            self.seq,
            self.pages(task_id),
            self.meta(task_id),
            self.line_events,
            self.webhooks,
        ]

    def families(
        self, name: str, owner: str, line: str = "", searched: Iterable[str] = ()
    ) -> list[str]:
        """The index families a task belongs to: all tasks, by name, by owner, by both; by
        its line and by line and owner (a record made without a line has none of these);
        by each searchable param's value (core.searchable: `searched`), and by it and owner."""
        found = [
            self.index_family(),
            self.index_family(name=name),
            self.index_family(owner=owner),
            self.index_family(name=name, owner=owner),
        ]
        if line:
            found += [self.index_family(line=line), self.index_family(owner=owner, line=line)]
        for param in searched:
            found += [self.index_family(param=param), self.index_family(owner=owner, param=param)]
        return found

    def ledger(self, ledger_id: str) -> str:
        """The ranges reserved in one ledger: entries "first:last:task", score first."""
        return f"{self.prefix}ledger:{ledger_id}"

    def idempotency(self, owner: str, key: str) -> str:
        return f"{self.prefix}idempotency:{owner}:{key}"

    def rate(self, owner: str, minute: int) -> str:
        """The owner's creations in one minute (since the epoch)."""
        return f"{self.prefix}rate:{owner}:{minute}"

    def usage(self, owner: str) -> str:
        """Bytes of params and results the owner's kept tasks hold (each record counts its
        own in `bytes`; the transition scripts keep the two together)."""
        return f"{self.prefix}bytes:{owner}"

    def streams(self, user: str) -> str:
        """The user's open event streams: one member each, scored by when its lease ends."""
        return f"{self.prefix}streams:{user}"

    def token(self, digest: str) -> str:
        """A bearer token (by its SHA-256): the name of its user, expiring with the token."""
        return f"{self.prefix}token:{digest}"

    def tokens(self, user: str) -> str:
        """A user's token keys, scored by when they expire (ms): revoked together."""
        return f"{self.prefix}tokens:{user}"

    def signin(self, name: str, address: str) -> list[str]:
        """Sign-in throttling (core/lua/signin.lua): failures, lock, strikes and checks under
        way of a user name, the same of a client address, and whether the name signed in
        from that address. Both come from clients: what could not be a user name goes in as
        a digest."""
        who, where = _key_part(name), _key_part(address)
        scopes = [f"name:{who}", f"address:{where}"]
        found = [f"{self.prefix}signin:{kind}:{s}" for s in scopes for kind in _SIGNIN_KINDS]
        return [*found, f"{self.prefix}signin:known:{who}/{where}"]

    def serial_checks(self, user: str, address: str) -> list[str]:
        """Serial checks counted this window (core/lua/allowance.lua): of a user, of an address."""
        where = _key_part(address)
        return [
            f"{self.prefix}serial-checks:user:{user}",
            f"{self.prefix}serial-checks:address:{where}",
        ]

    def runtimes(self, name: str, bucket: str = "") -> str:
        """The last run times (ms) of a task type, newest first, or of its runs whose params
        fell in one size bucket (core.estimates): a list capped at TASKLINE_ESTIMATE_SAMPLES."""
        return f"{self.prefix}runtimes:{name}" + (f":{bucket}" if bucket else "")

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
        self,
        state: str | None = None,
        name: str | None = None,
        owner: str | None = None,
        line: str | None = None,
        param: str | None = None,
    ) -> str:
        """The sorted set of task ids (score: creation sequence) for a filter.

        Families: all tasks, by name, by owner, by owner and name, by line, by line and
        owner (no family is by name and line: a task type is on one line), by a searchable
        param's value (`param`, core.searchable.part: it names the type) and by it and
        owner; each has an `all` set and one set per state (kept by core.transitions).
        """
        family = self.index_family(name, owner, line, param)
        return f"{family}state:{state}" if state else f"{family}all"

    def search(self, kind: str) -> str:
        """A search index of every task (core/lua/task.lua): `ids` (score 0, for prefixes by
        ZRANGEBYLEX), `created` (by creation ms), `finished` (a task in a final state, by
        when it got there, ms)."""
        return f"{self.index_family()}{kind}"

    def index_family(
        self,
        name: str | None = None,
        owner: str | None = None,
        line: str | None = None,
        param: str | None = None,
    ) -> str:
        family = f"{self.prefix}index:"
        if line:
            family += f"line:{line}:"
        if owner is not None:
            family += f"owner:{owner}:"
        if name:
            family += f"name:{name}:"
        if param:
            family += f"param:{param}:"
        return family

    @property
    def line(self) -> str:
        """The line's waiting tasks in the order they will run."""
        return f"{self._sets}line"

    @property
    def scheduled(self) -> str:
        """Postponed tasks by due time (ms)."""
        return f"{self._sets}scheduled"

    @property
    def outbox(self) -> str:
        """Tasks whose message is being published, by when it was attempted (ms)."""
        return f"{self._sets}outbox"

    @property
    def expiry(self) -> str:
        """Finished tasks by when they are to be forgotten (ms)."""
        return f"{self._sets}expiry"

    @property
    def cancelling(self) -> str:
        """Running tasks asked to stop, by when they will be stopped hard (ms)."""
        return f"{self._sets}cancelling"

    @property
    def channel(self) -> str:
        """Pub/sub channel announcing the id of each task that has a new event."""
        return f"{self.prefix}events"

    @property
    def line_events(self) -> str:
        """The stream of every change of every task (GET /events), newest last."""
        return f"{self.prefix}line-events"

    @property
    def webhooks(self) -> str:
        """Ended tasks whose webhooks are still to be planned, by when they ended (ms): the
        finishing scripts add each (core/lua/task.lua), the deliverer (worker.webhooks) takes
        them off once it has planned their deliveries."""
        return f"{self.prefix}webhooks"

    @property
    def webhook_deliveries(self) -> str:
        """Webhook deliveries still to make (JSON: task, URL, attempt, when it ended), by when
        the next attempt is due (ms)."""
        return f"{self.prefix}webhook-deliveries"

    @property
    def webhook_deliveries_by_task(self) -> str:
        """The same deliveries as `<task id> <member>`, all scored 0: deleting a task finds
        its own by ZRANGEBYLEX (core/lua/delete.lua), so none outlives its task."""
        return f"{self.prefix}webhook-deliveries-by-task"

    @property
    def seq(self) -> str:
        """The creation counter: orders the indexes and the line."""
        return f"{self.prefix}seq"

    @property
    def layout(self) -> str:
        """The key layout this Redis was found to hold (core.layout), so that a process
        starting later need not look through the keyspace again."""
        return f"{self.prefix}layout"

    @property
    def workers(self) -> str:
        """Workers by when they were last seen (ms); each lapses with its report."""
        return f"{self.prefix}workers"

    def worker(self, node: str) -> str:
        """A worker's own report (JSON), expiring a while after its last heartbeat."""
        return f"{self.prefix}workers:{node}"


_SIGNIN_KINDS = ("failures", "lock", "strikes", "checking")


def _key_part(text: str) -> str:
    """`text` if it could be a user name, else a digest (marked `#`, outside that set)."""
    if USER_NAME.fullmatch(text):
        return text
    return "#" + hashlib.sha256(text.encode()).hexdigest()[:32]


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
    """Compact JSON for record fields, as UTF-8 text (an emoji costs 4 bytes, not a 12-byte
    \\u escape pair); '' for None. A lone surrogate, which UTF-8 cannot carry, keeps its
    escape."""
    if value is None:
        return ""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError:
            return json.dumps(value, separators=(",", ":"))
    return text


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


@dataclass(frozen=True, slots=True)
class TaskRecord:
    """A task record as stored, parsed once (Redis keeps every field as text)."""

    id: str
    name: str
    params: dict[str, Any]
    state: State
    priority: int
    owner: str
    version: int
    attempts: int
    queued_at: str | None
    not_before: str | None
    started_at: str | None
    finished_at: str | None
    progress: dict[str, Any] | None
    error: dict[str, str] | None
    runner: str | None
    renewed_at: str | None
    line: str  # the line it was created on; '' for a record made before lines (the main)
    # The failures of earlier attempts that were retried, oldest first: type, message,
    # attempt, at (core/lua/retry.lua).
    errors: list[dict[str, Any]]
    # A failure's traceback, cut to TASKLINE_TRACEBACK_BYTES (core/lua/finish.lua): admins'.
    traceback: str | None = None
    # The task this one retries (POST /tasks/{id}/retry), and the task that retried this one.
    retry_of: str | None = None
    retried_by: str | None = None
    # The task this one was cloned from (POST /tasks/{id}/clone).
    clone_of: str | None = None
    # Where the task's end is POSTed (api.submit checked its host against the allow-list).
    callback_url: str | None = None

    @classmethod
    def parse(cls, fields: dict[str, str]) -> "TaskRecord":
        """The record from its hash fields ('' stands for none)."""
        get = fields.get
        return cls(
            id=fields["id"],
            name=fields["name"],
            params=json.loads(fields["params"]),
            state=State(fields["state"]),
            priority=int(get("priority") or 5),
            owner=get("owner", ""),
            version=int(get("version") or 0),
            attempts=int(get("attempts") or 0),
            queued_at=get("queued_at") or None,
            not_before=get("not_before") or None,
            started_at=get("started_at") or None,
            finished_at=get("finished_at") or None,
            progress=json.loads(fields["progress"]) if get("progress") else None,
            error=json.loads(fields["error"]) if get("error") else None,
            runner=get("runner") or None,
            renewed_at=get("renewed_at") or None,
            line=get("line", ""),
            errors=json.loads(fields["errors"]) if get("errors") else [],
            traceback=get("traceback") or None,
            retry_of=get("retry_of") or None,
            retried_by=get("retried_by") or None,
            clone_of=get("clone_of") or None,
            callback_url=get("callback_url") or None,
        )

    @property
    def etag(self) -> str:
        return f'"v{self.version}"'


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What Redis knows of one task: its record, Celery's result meta, its place in line."""

    record: TaskRecord
    meta: dict[str, Any] | None
    position: int | None


def line_keys(prefix: str, lines: Iterable[Line]) -> dict[str, Keys]:
    """The keys of each line under a prefix, by the line's name."""
    return {line.name: Keys(prefix, line) for line in lines}
