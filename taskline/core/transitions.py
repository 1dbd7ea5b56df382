"""Every change of a task record, one atomic Lua script each, behind typed methods.

A record moves between states only here, so its indexes, the line of waiting tasks, the
postponed set, the outbox, the ledgers of reserved ranges and its event stream always agree
with it. The scripts are the files in core/lua/ (each documents its KEYS, ARGV and replies);
this module is the one place that packs their arguments and turns their replies into the
outcomes below, so no caller builds an argument list or compares reply strings.

Each transition is built once, as a Call (script, keys, arguments, reply parser), and run by
one of two thin runners: `Transitions` on a blocking client (worker, scheduler) returns the
outcome, `AsyncTransitions` on an asyncio one (API) an awaitable of the same outcome.
"""

import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache, wraps
from pathlib import Path
from typing import Any, Concatenate, Generic, Literal, ParamSpec, TypeVar

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from taskline.core import task_metrics
from taskline.core.ledger import Allocation
from taskline.core.previews import cut
from taskline.core.records import (
    Keys,
    Snapshot,
    State,
    TaskRecord,
    dumps,
    iso,
    now_iso,
    now_ms,
)
from taskline.core.webhooks import ENDED

LUA = Path(__file__).with_name("lua")
# How long an Idempotency-Key is remembered (s).
IDEMPOTENCY_SECONDS = 24 * 3600
# A rate no one reaches.
UNLIMITED = 2**53
# Scripts about one task begin with task.lua (its keys, arguments and helpers); these span
# many tasks and stand alone.
_STANDALONE = frozenset(
    {
        "confirm",
        "read",
        "head",
        "signin",
        "revoke_tokens",
        "issue_token",
        "allowance",
        "store_result",
    }
)
# Not transitions: task.lua heads the others, store_result.lua is the result backend's.
_NOT_TRANSITIONS = frozenset({"task", "store_result"})


@cache
def source(name: str) -> str:
    """The text Redis runs for a script: task.lua and the script, or the script alone."""
    body = (LUA / f"{name}.lua").read_text()
    return body if name in _STANDALONE else (LUA / "task.lua").read_text() + "\n" + body


# Outcomes. Each names what happened; the fields carry what a caller needs next.


@dataclass(frozen=True, slots=True)
class Created:
    state: State
    turn: int  # the turn to publish; 0 for a postponed task
    snapshot: Snapshot


@dataclass(frozen=True, slots=True)
class Existing:
    """The Idempotency-Key created this task already."""

    task_id: str
    digest: str


@dataclass(frozen=True, slots=True)
class Limited:
    """Too many creations this minute; the next window opens in `retry_after` seconds."""

    retry_after: int


@dataclass(frozen=True, slots=True)
class Full:
    """The owner has the most waiting tasks allowed."""


@dataclass(frozen=True, slots=True)
class TooLarge:
    """The task's params (and result) take more bytes as stored than one task may."""

    size: int
    limit: int


@dataclass(frozen=True, slots=True)
class OverQuota:
    """The owner's kept tasks hold `used` bytes: these params would take them past `quota`."""

    used: int
    quota: int


@dataclass(frozen=True, slots=True)
class Overlap:
    """The range overlaps one reserved for another task."""

    first: int
    last: int
    task_id: str


@dataclass(frozen=True, slots=True)
class Retried:
    """The task was retried already, by `task_id`: a task is retried once."""

    task_id: str


@dataclass(frozen=True, slots=True)
class Link:
    """Where a new task comes from: the task it retries (linked both ways, once; that task
    must have ended FAILURE or CANCELLED) or clones (linked from the new task only).
    `seen_retry` is the retried task's `retried_by` as the caller read it: a retry that is
    gone since (deleted, forgotten) may be replaced, one that is not refuses (Retried).
    `via` (e.g. 'bulk'): what asked for a retry, recorded in the retried task's history."""

    kind: Literal["retry", "clone"]
    task_id: str
    seen_retry: str | None = None
    via: str = ""


@dataclass(frozen=True, slots=True)
class Kept:
    """The task has run (a lost run put it back in line): it keeps its reserved range for
    good, since that run may have issued any of it."""

    attempts: int


@dataclass(frozen=True, slots=True)
class Edited:
    turn: int  # the turn to publish; 0 when the task keeps its place


@dataclass(frozen=True, slots=True)
class Conflict:
    """The task is not in a state that allows the change."""

    state: State


@dataclass(frozen=True, slots=True)
class VersionMismatch:
    """If-Match named another version."""

    version: int


@dataclass(frozen=True, slots=True)
class Unknown:
    """No such task."""


@dataclass(frozen=True, slots=True)
class ResultMeta:
    """Celery's result meta of a task, as its result backend encodes it, and its expiry in
    seconds (0: none): stored by the script of the transition it goes with (a claim's
    STARTED, a finish's SUCCESS), never over a stored SUCCESS, and published on its key."""

    value: str | bytes
    expires: int


def _seconds_since(moment: str, now_ms: int) -> float | None:
    """Seconds from an ISO time of a record to `now_ms` (None for none or a bad one)."""
    try:
        return max(0.0, now_ms / 1000 - datetime.fromisoformat(moment).timestamp())
    except ValueError:
        return None


def _meta_args(meta: ResultMeta | None) -> list[Any]:
    return ["", 0] if meta is None else [meta.value, meta.expires]


def _counted(metrics: bool) -> str:
    """The flag of a script that may end a task: '1' counts the end it records in the
    deployment's ended-task figures (core.task_metrics, TASKLINE_METRICS), in the same script."""
    return "1" if metrics else ""


def _heard(states: Iterable[str]) -> str:
    """The argument of a script that may end a task: the ended states a global webhook hears
    of (core.webhooks.heard), comma-separated; an end no URL hears of is not put in the
    webhook outbox (core/lua/task.lua)."""
    return ",".join(sorted(states))


def _times_args(waited: float | None, ran: float | None) -> list[Any]:
    """A run's wait and run seconds as a finish counts them: each its bucket's index in
    task_metrics.BUCKETS (kept there alone) and its seconds; '' and '' when not known."""
    args: list[Any] = []
    for seconds in (waited, ran):
        args += ["", ""] if seconds is None else [task_metrics.bucket(seconds), float(seconds)]
    return args


@dataclass(frozen=True, slots=True)
class RunTime:
    """A run's time in ms, recorded with its successful finish under its task type `name`
    (and its size `bucket`, '' for none), each list keeping the last `samples`."""

    name: str
    ms: int
    samples: int
    bucket: str = ""

    def __post_init__(self) -> None:
        if self.samples < 1 or self.ms < 0:
            raise ValueError("a run time is >= 0 ms, and at least one is kept")


@dataclass(frozen=True, slots=True)
class Claimed:
    token: int  # the run's token: every write of the run carries it
    params: dict[str, Any]
    params_bytes: int = field(default=0, compare=False)  # as stored
    # Seconds from the task's creation to this claim, on Redis's clock (None: not known).
    waited: float | None = field(default=None, compare=False)


@dataclass(frozen=True, slots=True)
class Held:
    """A live run of this turn holds the lease ("token runner")."""

    holder: str


@dataclass(frozen=True, slots=True)
class Skipped:
    """Do not run this message (unknown, superseded, duplicate, ended, cancelled, refused,
    mismatch, line: its task is on another line than the queue's)."""

    reason: str


@dataclass(frozen=True, slots=True)
class PassedOn:
    """Do not run this message, and put it back: it came to nothing (`reason`), but tasks
    wait in line, and on a replicated queue any message is the turn of the line's head."""

    reason: str


@dataclass(frozen=True, slots=True)
class Head:
    """The task the next turn of a replicated queue runs (core/lua/head.lua)."""

    task_id: str
    name: str
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Cancelled:
    """A waiting task was cancelled; it never runs."""


@dataclass(frozen=True, slots=True)
class Cancelling:
    """A running task was asked to stop."""


@dataclass(frozen=True, slots=True)
class Ended:
    state: State


@dataclass(frozen=True, slots=True)
class Deleted:
    state: State


@dataclass(frozen=True, slots=True)
class Running:
    """A running task cannot be deleted."""


@dataclass(frozen=True, slots=True)
class Requeued:
    """A lost run's task is back in line."""

    turn: int


@dataclass(frozen=True, slots=True)
class Recovered:
    """A lost run's task ended: SUCCESS (Celery had stored it) or CANCELLED."""

    state: State


@dataclass(frozen=True, slots=True)
class Retrying:
    """A failed run's task waits for its next attempt: SCHEDULED until `not_before`."""

    not_before: str


@dataclass(frozen=True, slots=True)
class Stale:
    """The run no longer holds its task: nothing changed."""


@dataclass(frozen=True, slots=True)
class Alive:
    """The run still holds its lease (or its live worker is stopping it)."""


@dataclass(frozen=True, slots=True)
class SigninBudget:
    """Failed sign-ins allowed per user name and per client address in a window, and the
    lockouts past them (the first, doubled each time up to the longest)."""

    per_name: int
    per_address: int
    window_ms: int
    lockout_ms: int
    lockout_max_ms: int
    # How long a check holds its place if its end is never told (its process died).
    hold_ms: int


@dataclass(frozen=True, slots=True)
class RevokedBatch:
    """One batch of a revocation: live tokens revoked, the bound to pass on, whether more
    tokens under it are left."""

    revoked: int
    bound: str
    more: bool


Postpone = Literal["keep", "clear", "set"]
# What a creation comes to (Unknown and Conflict: a retried task gone, or not ended).
CreateOutcome = (
    Created
    | Existing
    | Limited
    | Full
    | Overlap
    | TooLarge
    | OverQuota
    | Retried
    | Conflict
    | Unknown
)
# What an edit comes to.
EditOutcome = (
    Edited | Conflict | VersionMismatch | Overlap | Kept | Limited | TooLarge | OverQuota | Unknown
)
# A reserved range: its ledger's id, first and last number (see taskline.ExclusiveRange).
Reservation = tuple[str, int, int]


def _overlap(entry: str) -> Overlap:
    found = Allocation.parse(entry)
    return Overlap(found.first, found.last, found.task_id)


def _record(flat: list[str]) -> dict[str, str]:
    return dict(zip(flat[::2], flat[1::2], strict=True))


T = TypeVar("T")
P = ParamSpec("P")


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One run of a script: its keys and arguments, and how its reply becomes the outcome."""

    script: str
    keys: list[str]
    args: list[Any]
    parse: Callable[[Any], T]


def waiting_sets(keys: Keys, lines: Mapping[str, str] | None) -> dict[str, str]:
    """The sets of waiting tasks a read finds places in, by line name: `lines`, else the
    line of `keys` alone; '' (a record made before lines) names the main line's."""
    found = dict(lines) if lines is not None else {keys.line_name: keys.line}
    if "" not in found:
        found[""] = Keys(keys.prefix).line
    return found


class Calls:
    """Builds each transition's Call on one line's keys; the runners below execute them.

    `lines`: every line's set of waiting tasks by name, where reads find each task's place
    (by default that of `keys` alone).
    """

    def __init__(self, keys: Keys, lines: Mapping[str, str] | None = None) -> None:
        self.keys = keys
        self.lines = waiting_sets(keys, lines)
        # the deployment's ended-task figures, counted by the scripts that record ends
        self.metrics = task_metrics.key(keys.prefix)

    def _task(
        self,
        name: str,
        task_id: str,
        extra_keys: list[str],
        args: list[Any],
        parse: Callable[[Any], T],
    ) -> Call[T]:
        """A script about one task: its keys and the shared arguments come first."""
        keys = self.keys.of_task(task_id) + extra_keys
        head = [task_id, now_iso(), now_ms(), self.keys.channel]
        return Call(name, keys, head + args, parse)

    def create(
        self,
        task_id: str,
        name: str,
        params: dict[str, Any],
        priority: int,
        owner: str,
        not_before: tuple[str, int] | None,
        max_waiting: int,
        idempotency: tuple[str, str] | None,
        per_minute: int,
        reserve: Reservation | None,
        *,
        max_task_bytes: int = UNLIMITED,
        max_user_bytes: int = UNLIMITED,
        link: Link | None = None,
        callback_url: str = "",
        searched: Sequence[str] = (),
    ) -> Call[CreateOutcome]:
        """Record a task (QUEUED, or SCHEDULED with `not_before`: ISO text and ms).

        `idempotency` is (key, request digest); `reserve` the range to reserve. Its params
        count against the owner's bytes, up to `max_user_bytes`. `link`: the task it retries
        or clones, recorded in both tasks' histories for a retry. `callback_url`: where its
        end is POSTed ('' for nowhere). `searched`: the values of its searchable params its
        indexes hold (core.searchable.searched).
        """
        now = now_ms()
        encoded = dumps(params)
        key, digest = idempotency or ("", "")
        ledger, first, last = reserve or ("", "", "")
        nb_iso, nb_ms = not_before or ("", 0)
        extra_keys = [
            self.keys.idempotency(owner, key),
            self.keys.rate(owner, now // 60_000),
            self.keys.index("QUEUED", owner=owner),
            self.keys.index("SCHEDULED", owner=owner),
            self.keys.ledger(ledger),
            self.keys.usage(owner),
            self.keys.task(link.task_id if link else ""),
            self.keys.history(link.task_id if link else ""),
            self.keys.task(link.seen_retry if link and link.seen_retry else ""),
        ]
        args = [
            name,
            encoded,
            priority,
            owner,
            dumps(self.keys.families(name, owner, self.keys.line_name, searched)),
            nb_iso,
            nb_ms,
            max_waiting,
            digest,
            IDEMPOTENCY_SECONDS,
            per_minute,
            first,
            last,
            len(encoded.encode()),
            max_task_bytes,
            max_user_bytes,
            link.kind if link else "",
            link.task_id if link else "",
            (link.seen_retry or "") if link else "",
            self.keys.line_name,
            callback_url,
            link.via if link else "",
        ]

        def parse(reply: list[Any]) -> CreateOutcome:
            match reply:
                case ["created", state, turn, flat, rank]:
                    record = TaskRecord.parse(_record(flat))
                    position = None if rank is None else rank + 1
                    return Created(State(state), int(turn), Snapshot(record, None, position))
                case ["existing", found, seen_digest]:
                    return Existing(found, seen_digest)
                case ["limited"]:
                    return Limited(60 - (now // 1000) % 60)
                case ["full"]:
                    return Full()
                case ["overlap", entry]:
                    return _overlap(entry)
                case ["too_large", size]:
                    return TooLarge(int(size), max_task_bytes)
                case ["over_quota", used]:
                    return OverQuota(int(used), max_user_bytes)
                case ["gone"]:
                    return Unknown()
                case ["not_ended", state]:
                    return Conflict(State(state))
                case ["retried", by]:
                    return Retried(by)
            raise ValueError(f"create: unexpected reply {reply!r}")

        return self._task("create", task_id, extra_keys, args, parse)

    def delete(
        self, task_id: str, *, unpublished: bool = False
    ) -> Call[Deleted | Running | Unknown]:
        """Forget a task that is not running (a range it reserved and never used is given back).

        `unpublished`: its first message never reached RabbitMQ; its Idempotency-Key goes too.
        It leaves the webhook outbox and its deliveries, made or not (worker.webhooks).
        """

        def parse(reply: list[Any]) -> Deleted | Running | Unknown:
            match reply:
                case ["deleted", state]:
                    return Deleted(State(state))
                case ["running"]:
                    return Running()
            return Unknown()

        extra_keys = [self.keys.webhook_deliveries, self.keys.webhook_deliveries_by_task]
        args = ["1" if unpublished else ""]
        return self._task("delete", task_id, extra_keys, args, parse)

    def claim(
        self,
        task_id: str,
        turn: str | None,
        redelivered: bool,
        name: str,
        params: dict[str, Any],
        runner: str,
        lease_ms: int,
        ranged: bool,
        *,
        forget_ms: int,
        meta: ResultMeta | None = None,
        quorum: bool = False,
        metrics: bool = True,
        heard: Iterable[str] = ENDED,
    ) -> Call[Claimed | Held | Skipped | PassedOn]:
        """Take a message's turn before running it; `turn` None for a message without one.

        `forget_ms`: when to forget the task if this claim ends it (refused, cancelled, or a
        lost run's SUCCESS); `meta`: Celery's STARTED meta of the run, stored if it is
        claimed. `quorum`: the message is a turn of a replicated queue, bound at delivery to
        the task it runs (`head`): its turn number does not matter, and one that comes to
        nothing is passed on while tasks wait. `metrics`: an end the claim records (see
        `forget_ms`) is counted in the ended-task figures (core.task_metrics); `heard`: the
        ended states a global webhook hears of (core.webhooks.heard).
        """
        args = [
            turn or "",
            "1" if redelivered else "",
            name,
            dumps(params),
            dumps(self.keys.families(name, "", self.keys.line_name)),
            "1" if ranged else "",
            runner,
            lease_ms,
            forget_ms,
            *_meta_args(meta),
            "1" if quorum else "",
            self.keys.line_name,
            "1" if self.keys.main else "",
            _counted(metrics),
            _heard(heard),
        ]

        def parse(reply: list[Any]) -> Claimed | Held | Skipped | PassedOn:
            match reply:
                case ["claimed", token, found, queued_at, claimed_ms]:
                    waited = _seconds_since(queued_at, int(claimed_ms))
                    return Claimed(int(token), json.loads(found), len(found.encode()), waited)
                case ["held", holder]:
                    return Held(holder)
                case ["skipped", why]:
                    return Skipped(why)
                case ["passed", why]:
                    return PassedOn(why)
            raise ValueError(f"claim: unexpected reply {reply!r}")

        return self._task("claim", task_id, [self.metrics], args, parse)

    def finish(
        self,
        task_id: str,
        state: State,
        error: dict[str, str] | None,
        forget_ms: int,
        *,
        token: int | None = None,
        runner: str | None = None,
        stored: int = 0,
        meta: ResultMeta | None = None,
        traceback: str = "",
        run_time: RunTime | None = None,
        waited: float | None = None,
        ran: float | None = None,
        metrics: bool = True,
        heard: Iterable[str] = ENDED,
    ) -> Call[bool]:
        """End the run named by its token (or, from outside the run, by its runner);
        `stored`: the bytes of the result Celery keeps, counted against the owner's; `meta`:
        Celery's meta of the end, stored with it; `traceback`: a failure's (cut already),
        kept on the record and counted against the owner's bytes too; `run_time`: recorded
        for estimates if the run ends SUCCESS (core.estimates), in the same round trip.
        `metrics`: the end is counted in the ended-task figures (core.task_metrics) by the
        same script, with the run's `waited` and `ran` seconds where known. `heard`: the ended
        states a global webhook hears of (core.webhooks.heard).

        False when that run no longer holds the task: nothing changed, nothing counted.
        """
        if (token is None) == (runner is None):
            raise ValueError("name the run by its token or by its runner")
        args = ["" if token is None else token, runner or "", state.value, dumps(error)]
        args += [forget_ms, stored, *_meta_args(meta), traceback]
        args += ["", ""] if run_time is None else [run_time.ms, run_time.samples]
        args += [_counted(metrics), *_times_args(waited, ran), _heard(heard)]
        extra = [self.metrics]
        if run_time is not None:
            kept = self.keys.runtimes(run_time.name)
            extra += [kept, self.keys.runtimes(run_time.name, run_time.bucket)]
        return self._task("finish", task_id, extra, args, bool)

    def retry(
        self,
        task_id: str,
        token: int,
        error: dict[str, Any],
        not_before_ms: int,
        *,
        kept: int,
    ) -> Call[Retrying | Cancelling | Stale]:
        """Postpone the task of a failed run (named by its token) to its next attempt at
        `not_before_ms`, recording the failure (`error`: type and message) with its attempt;
        the record keeps the last `kept` of them (TASKLINE_RETRY_ERRORS_KEPT). A run asked to
        stop is not retried."""
        if kept < 1:
            raise ValueError("a record keeps at least the last failure")
        moment = iso(datetime.fromtimestamp(not_before_ms / 1000, UTC))

        def parse(reply: list[Any]) -> Retrying | Cancelling | Stale:
            match reply:
                case ["retrying"]:
                    return Retrying(moment)
                case ["cancelling"]:
                    return Cancelling()
                case ["stale"]:
                    return Stale()
            raise ValueError(f"retry: unexpected reply {reply!r}")

        args = [token, dumps(error), moment, not_before_ms, kept]
        return self._task("retry", task_id, [], args, parse)

    def progress(
        self, task_id: str, token: int, progress: dict[str, Any], *, event_bytes: int = UNLIMITED
    ) -> Call[bool]:
        """Record a run's progress, its events carrying it cut to about `event_bytes`; False
        when the run is stale."""
        shown, was_cut = cut(progress, event_bytes)
        args = [token, dumps(progress), dumps(shown) if was_cut else ""]
        return self._task("progress", task_id, [], args, bool)

    def page(self, task_id: str, token: int, items: list[Any]) -> Call[bool]:
        """Append a page of a run's result; False when the run is stale."""
        return self._task("page", task_id, [], [token, dumps(items)], bool)

    def renew(self, task_id: str, token: int, runner: str, lease_ms: int) -> Call[bool]:
        """Renew a run's lease; False when the run is stale and should stop."""
        return self._task("renew", task_id, [], [token, runner, lease_ms], bool)

    def cancel(
        self,
        task_id: str,
        stop_ms: int,
        forget_ms: int,
        via: str = "",
        *,
        metrics: bool = True,
        heard: Iterable[str] = ENDED,
    ) -> Call[Cancelled | Cancelling | Ended | Unknown]:
        """Cancel a waiting task, or ask a running one to stop (hard stop at `stop_ms`);
        `via` (e.g. 'bulk') is recorded in its history entry; `metrics`: a waiting task's end
        is counted (core.task_metrics) by the same script; `heard`: the ended states a global
        webhook hears of (core.webhooks.heard)."""

        def parse(reply: list[Any]) -> Cancelled | Cancelling | Ended | Unknown:
            match reply:
                case ["cancelled"]:
                    return Cancelled()
                case ["cancelling"]:
                    return Cancelling()
                case ["ended", state]:
                    return Ended(State(state))
            return Unknown()

        args = [stop_ms, forget_ms, via, _counted(metrics), _heard(heard)]
        return self._task("cancel", task_id, [self.metrics], args, parse)

    def edit(
        self,
        task_id: str,
        version: int | None,
        params: dict[str, Any] | None,
        priority: int | None,
        postpone: Postpone,
        not_before: tuple[str, int] | None,
        change: dict[str, Any],
        reserve: Reservation | None,
        *,
        editor: str = "",
        per_minute: int = UNLIMITED,
        max_task_bytes: int = UNLIMITED,
        max_user_bytes: int = UNLIMITED,
        families: list[str] | None = None,
    ) -> Call[EditOutcome]:
        """Change a waiting task; `reserve` is the range new params need (swapped atomically
        while the task never ran, else refused unless it is the range the task holds).
        `families`: its index families with the new params (Keys.families), None to keep.

        An edit counts against the editor's creations and edits a minute, and new params
        against the bytes of a task and of its owner (the API passes the bounds; tools and
        tests may leave them out).
        """
        now = now_ms()
        encoded = "" if params is None else dumps(params)
        ledger, first, last = reserve or ("", "", "")
        nb_iso, nb_ms = not_before or ("", 0)
        args = [
            "" if version is None else version,
            encoded,
            "" if priority is None else priority,
            postpone,
            nb_iso,
            nb_ms,
            dumps(change),
            first,
            last,
            per_minute,
            len(encoded.encode()),
            max_task_bytes,
            max_user_bytes,
            "" if families is None else dumps(families),
        ]
        extra_keys = [self.keys.ledger(ledger), self.keys.rate(editor, now // 60_000)]

        def parse(reply: list[Any]) -> EditOutcome:
            match reply:
                case ["edited", turn]:
                    return Edited(int(turn))
                case ["conflict", state]:
                    return Conflict(State(state))
                case ["precondition", current]:
                    return VersionMismatch(int(current))
                case ["overlap", entry]:
                    return _overlap(entry)
                case ["kept", attempts]:
                    return Kept(int(attempts))
                case ["limited"]:
                    return Limited(60 - (now // 1000) % 60)
                case ["too_large", size]:
                    return TooLarge(int(size), max_task_bytes)
                case ["over_quota", used]:
                    return OverQuota(int(used), max_user_bytes)
            return Unknown()

        return self._task("edit", task_id, extra_keys, args, parse)

    def release(self, task_id: str) -> Call[int]:
        """Put a due postponed task back in line: the turn to publish, or 0."""
        return self._task("release", task_id, [], [], int)

    def reissue(self, task_id: str) -> Call[int]:
        """A new turn for a waiting task, same place in line: the turn to publish, or 0."""
        return self._task("reissue", task_id, [], [], int)

    def recover(
        self,
        task_id: str,
        node_alive: bool,
        forget_ms: int,
        quiet_ms: int,
        *,
        metrics: bool = True,
        heard: Iterable[str] = ENDED,
    ) -> Call[Requeued | Recovered | Alive | Skipped]:
        """Settle a run whose lease lapsed and that renewed nothing for `quiet_ms`: see
        core/lua/recover.lua; `metrics`: an end it records is counted (core.task_metrics);
        `heard`: the ended states a global webhook hears of (core.webhooks.heard)."""

        def parse(reply: list[Any]) -> Requeued | Recovered | Alive | Skipped:
            match reply:
                case ["requeued", turn]:
                    return Requeued(int(turn))
                case ["succeeded"]:
                    return Recovered(State.SUCCESS)
                case ["cancelled"]:
                    return Recovered(State.CANCELLED)
                case ["alive"]:
                    return Alive()
            return Skipped("not running")

        args = ["1" if node_alive else "", forget_ms, quiet_ms, _counted(metrics)]
        args.append(_heard(heard))
        return self._task("recover", task_id, [self.metrics], args, parse)

    def confirm(self, turns: list[tuple[str, int]]) -> Call[int]:
        """Take confirmed turns off the outbox, each only if it is still its task's turn."""
        keys = [self.keys.outbox, *(self.keys.task(task_id) for task_id, _ in turns)]
        args = [task_id for task_id, _ in turns] + [str(turn) for _, turn in turns]
        return Call("confirm", keys, args, int)

    def head(self) -> Call[Head | None]:
        """The task the next turn of this line's replicated queue runs: one of the line that
        started and has not ended, else the first of the line; None when none did and none
        waits."""

        def parse(reply: list[Any]) -> Head | None:
            match reply:
                case [task_id, name, params]:
                    return Head(task_id, name, json.loads(params))
            return None

        started = self.keys.index(State.STARTED.value, line=self.keys.line_name or None)
        keys = [self.keys.line, started]
        return Call("head", keys, [self.keys.task("")], parse)

    def read(self, task_ids: list[str]) -> Call[list[Snapshot]]:
        """Several tasks in one round trip, in the given order, each with its place in its
        line; unknown ids are left out."""
        keys = list(self.lines.values())
        for task_id in task_ids:
            keys += (self.keys.task(task_id), self.keys.meta(task_id))

        def parse(replies: list[Any]) -> list[Snapshot]:
            return [
                Snapshot(
                    TaskRecord.parse(_record(flat)),
                    json.loads(meta) if meta else None,
                    None if rank is None else rank + 1,
                )
                for flat, meta, rank in replies
                if flat
            ]

        return Call("read", keys, [len(self.lines), *self.lines, *task_ids], parse)

    def signin(self, name: str, address: str) -> Call[int]:
        """ms until a lockout of the name or the address ends, 0 if none; nothing counts."""
        return Call("signin", self.keys.signin(name, address), ["check"], int)

    def signin_begin(
        self, name: str, address: str, attempt: str, budget: SigninBudget
    ) -> Call[int]:
        """The gate of a password check: ms until a lockout ends; 0 to go ahead (the check
        holds a place in the budgets until `signin_failed` or `signed_in`); -1 when every
        place left is held by checks under way (ask again once one may have ended)."""
        args = ["begin", attempt, budget.per_name, budget.per_address, budget.hold_ms]
        return Call("signin", self.keys.signin(name, address), args, int)

    def signin_failed(
        self, name: str, address: str, attempt: str, budget: SigninBudget
    ) -> Call[int]:
        """The password was wrong: counted, and a lockout once a budget is used up; ms of
        the lockout it started (the longer, if both), 0 if none."""
        args: list[Any] = ["fail", attempt, budget.per_name, budget.per_address]
        args += [budget.window_ms, budget.lockout_ms, budget.lockout_max_ms]
        return Call("signin", self.keys.signin(name, address), args, int)

    def signed_in(self, name: str, address: str, attempt: str, known_ms: int) -> Call[int]:
        """The password was right: the name's failures are cleared, and it is known at this
        address for `known_ms` (spared that address's lockouts)."""
        args = ["succeed", attempt, known_ms]
        return Call("signin", self.keys.signin(name, address), args, int)

    def serial_check(self, user: str, address: str, per_minute: int) -> Call[int]:
        """Count a serial check of a user from an address: 0, or ms until one is allowed."""
        keys = self.keys.serial_checks(user, address)
        return Call("allowance", keys, [per_minute, 60_000], int)

    def issue_token(self, user: str, key: str, ttl_ms: int, most: int) -> Call[int]:
        """Record a new token of a user (its key, lifetime); beyond `most` tokens the oldest
        are revoked: how many were."""
        return Call("issue_token", [self.keys.tokens(user), key], [user, ttl_ms, most], int)

    def revoke_tokens(self, user: str, bound: str | None, batch: int) -> Call[RevokedBatch]:
        """Revoke at most `batch` of a user's tokens held when the revocation began (`bound`
        None on the first call, then the one the previous batch answered)."""

        def parse(reply: list[Any]) -> RevokedBatch:
            return RevokedBatch(int(reply[0]), str(reply[1]), bool(reply[2]))

        keys = [self.keys.tokens(user)]
        return Call("revoke_tokens", keys, [bound or "", batch], parse)


def _scripts(client: Redis | AsyncRedis) -> dict[str, Any]:
    """Every transition script, registered on a client (sent by SHA, loaded on a miss)."""
    return {
        path.stem: client.register_script(source(path.stem))
        for path in LUA.glob("*.lua")
        if path.stem not in _NOT_TRANSITIONS
    }


def _blocking(
    build: Callable[Concatenate[Calls, P], Call[T]],
) -> Callable[Concatenate["Transitions", P], T]:
    @wraps(build)
    def method(self: "Transitions", /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self.run(build(self.calls, *args, **kwargs))

    return method


def _awaiting(
    build: Callable[Concatenate[Calls, P], Call[T]],
) -> Callable[Concatenate["AsyncTransitions", P], Awaitable[T]]:
    @wraps(build)
    def method(self: "AsyncTransitions", /, *args: P.args, **kwargs: P.kwargs) -> Awaitable[T]:
        return self.run(build(self.calls, *args, **kwargs))

    return method


class Transitions:
    """The transitions on a blocking client (worker, scheduler): each returns its outcome."""

    def __init__(self, client: Redis, keys: Keys, lines: Mapping[str, str] | None = None) -> None:
        self.keys = keys
        self.calls = Calls(keys, lines)
        self._scripts = _scripts(client)

    def run(self, call: Call[T]) -> T:
        return call.parse(self._scripts[call.script](keys=call.keys, args=call.args))

    def queue(self, pipe: Pipeline, call: Call[Any]) -> None:
        """Queue a transition on a pipeline; its execute() returns the raw replies (for bulk
        loads in tests and benchmarks)."""
        self._scripts[call.script](keys=call.keys, args=call.args, client=pipe)

    create = _blocking(Calls.create)
    delete = _blocking(Calls.delete)
    claim = _blocking(Calls.claim)
    finish = _blocking(Calls.finish)
    retry = _blocking(Calls.retry)
    progress = _blocking(Calls.progress)
    page = _blocking(Calls.page)
    renew = _blocking(Calls.renew)
    cancel = _blocking(Calls.cancel)
    edit = _blocking(Calls.edit)
    release = _blocking(Calls.release)
    reissue = _blocking(Calls.reissue)
    recover = _blocking(Calls.recover)
    confirm = _blocking(Calls.confirm)
    head = _blocking(Calls.head)
    read = _blocking(Calls.read)
    signin = _blocking(Calls.signin)
    signin_begin = _blocking(Calls.signin_begin)
    signin_failed = _blocking(Calls.signin_failed)
    signed_in = _blocking(Calls.signed_in)
    serial_check = _blocking(Calls.serial_check)
    issue_token = _blocking(Calls.issue_token)
    revoke_tokens = _blocking(Calls.revoke_tokens)


class AsyncTransitions:
    """The transitions on an asyncio client (API): each returns an awaitable of its outcome."""

    def __init__(
        self, client: AsyncRedis, keys: Keys, lines: Mapping[str, str] | None = None
    ) -> None:
        self.keys = keys
        self.calls = Calls(keys, lines)
        self._client = client
        self._scripts = _scripts(client)

    async def run(self, call: Call[T]) -> T:
        return call.parse(await self._scripts[call.script](keys=call.keys, args=call.args))

    async def run_replicated(self, call: Call[T], replicas: int, timeout_ms: int) -> tuple[T, int]:
        """Run a transition, then wait until `replicas` replicas hold its writes, at most
        `timeout_ms`: its outcome and how many replicas acknowledged them.

        WAIT counts the writes of its own connection, so the script and WAIT go together in
        one pipeline (one round trip). Sent by SHA: a primary that lacks the script (a replica
        just promoted) answers NOSCRIPT, and it is loaded and sent again.
        """
        script = self._scripts[call.script]
        async with self._client.pipeline(transaction=False) as pipe:
            pipe.evalsha(script.sha, len(call.keys), *call.keys, *call.args)
            pipe.wait(replicas, timeout_ms)
            reply, acked = await pipe.execute(raise_on_error=False)
        if isinstance(reply, NoScriptError):
            await self._client.script_load(script.script)
            return await self.run_replicated(call, replicas, timeout_ms)
        for answer in (reply, acked):
            if isinstance(answer, Exception):
                raise answer
        return call.parse(reply), int(acked)

    create = _awaiting(Calls.create)
    delete = _awaiting(Calls.delete)
    claim = _awaiting(Calls.claim)
    finish = _awaiting(Calls.finish)
    retry = _awaiting(Calls.retry)
    progress = _awaiting(Calls.progress)
    page = _awaiting(Calls.page)
    renew = _awaiting(Calls.renew)
    cancel = _awaiting(Calls.cancel)
    edit = _awaiting(Calls.edit)
    release = _awaiting(Calls.release)
    reissue = _awaiting(Calls.reissue)
    recover = _awaiting(Calls.recover)
    confirm = _awaiting(Calls.confirm)
    head = _awaiting(Calls.head)
    read = _awaiting(Calls.read)
    signin = _awaiting(Calls.signin)
    signin_begin = _awaiting(Calls.signin_begin)
    signin_failed = _awaiting(Calls.signin_failed)
    signed_in = _awaiting(Calls.signed_in)
    serial_check = _awaiting(Calls.serial_check)
    issue_token = _awaiting(Calls.issue_token)
    revoke_tokens = _awaiting(Calls.revoke_tokens)


class ResultWrites:
    """The result backend's state write (core/lua/store_result.lua) on its blocking client."""

    def __init__(self, client: Redis) -> None:
        self._script = client.register_script(source("store_result"))

    def store(self, key: str, value: str | bytes, expires: int) -> bool:
        """Store and publish a task's meta; False when a stored SUCCESS kept it out."""
        return bool(self._script(keys=[key], args=[value, expires]))
