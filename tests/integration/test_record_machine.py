"""The record scripts as a state machine: no sequence of changes can tear a record apart.

The example tests in test_transitions.py follow one story each. Here Hypothesis makes the
stories up: it drives the real Lua scripts on the real Redis through core.transitions, as the
API, the worker and the scheduler do (create, edit, release, cancel, claim, a run's writes,
finish, a failed run retried, delete, confirm, read, reissue, recover, Celery's state writes,
those a run's claim and finish store with them too, a task retried or cloned as a new one),
on two lines, each through its own keys, and plays the faults they must survive: a run whose
lease lapses, a redelivered message, a stale run writing late, the confirm of an old turn, a
lost run put back in line, a message sent by name without a turn, a retry asked twice or
after its retry was deleted, of a task gone meanwhile. A small model of each record says what
every call must answer (a creation refused changes nothing), and after every step the
invariants are read back from Redis: one state per task, in the indexes (and every kept task
in exactly its search indexes, a forgotten one in none), its line, the
postponed set and the outbox alike, and in no other line's; no serial range reserved twice,
and none given back or changed once its task ran; a retried task is postponed with its
failures recorded, oldest first, each with the attempt that failed; Celery's state of a task
is the last one written, never over a SUCCESS; a task and its retry name each other, and a
task has one retry at most; every change on the stream of changes names its task's line;
every ended task a URL may hear of (its callback_url, a global webhook of its end's state as
the ending scripts are told) waits in the webhook outbox until the deliverer plans its
deliveries (one per URL that hears of its end), no other end waits there, and a deleted task
leaves neither behind; a successful finish
keeps its run time, capped, by type and size bucket, and no other end does; every end the
model records is counted once in the ended-task figures, by type and outcome, with the wait
and run times its finish gave (a stale or repeated finish counts nothing), whichever script
recorded it (a cancel, a claim, a finish, a recovery), and no other script counts.

The machine runs twice: with turns of a classic priority queue, each naming its task, and with
turns of a quorum queue, each bound on delivery to the head of its own line
(core/lua/head.lua) and claimed whatever its turn number; there a turn that comes to nothing
is passed on while tasks wait, so no waiting task is left without a message.
"""

import asyncio
import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
import redis.asyncio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.internal.conjecture import engine
from hypothesis.stateful import (
    Bundle,
    MultipleResults,
    RuleBasedStateMachine,
    consumes,
    initialize,
    invariant,
    multiple,
    precondition,
    rule,
)

from taskline import ExclusiveRange
from taskline.builtins import SERIAL_RANGE
from taskline.core import task_metrics
from taskline.core.ledger import Allocation
from taskline.core.lines import Line
from taskline.core.records import TERMINAL, WAITING, Keys, State, iso, line_keys, now_ms
from taskline.core.searchable import searched
from taskline.core.settings import Settings
from taskline.core.transitions import (
    Alive,
    AsyncTransitions,
    Cancelled,
    Cancelling,
    Claimed,
    Conflict,
    Created,
    Deleted,
    Edited,
    Ended,
    Existing,
    Full,
    Held,
    Kept,
    Link,
    Overlap,
    PassedOn,
    Postpone,
    Recovered,
    Requeued,
    Reservation,
    ResultMeta,
    ResultWrites,
    Retried,
    Retrying,
    Running,
    RunTime,
    Skipped,
    Stale,
    Transitions,
    Unknown,
    VersionMismatch,
)
from taskline.core.webhooks import ENDED, heard, hooks_of, targets
from taskline.worker.webhooks import Deliverer, Delivery
from tests.support import run_name

pytestmark = pytest.mark.integration

# Long enough never to lapse by itself during a run: the machine lapses leases on purpose.
LEASE_MS = 600_000
FOREVER = 2**42
MAX_TASKS = 6
# Run times a finish keeps per list in the machine: few, so that the cap is reached.
RUNTIMES_KEPT = 3
SHRINK_SECONDS = 45
SERIALS = "generate_serials"
# A test-only ranged type beside the serials: one ledger, no scope, other field names.
SEATS = "test_seats"
RANGED = {SERIALS: SERIAL_RANGE, SEATS: ExclusiveRange(ledger="seats", first="seat", count="n")}
NAMES = ("reverse", SERIALS, SEATS)
OWNERS = ("alice", "bob")
ADOPTED = ""  # the owner of a task adopted from a message sent without the API
# The main line (the keys of before lines) and another, with sets of its own.
LINES = (Line("main", "q", True, frozenset()), Line("side", "q.side", False, frozenset()))
MAIN = LINES[0].name
MODELS = ("AB", "CD")
LEDGERS = sorted(
    {*(SERIAL_RANGE.ledger_id({"code_model": m}) for m in MODELS), RANGED[SEATS].ledger_id({})}
)
CHANGE = {"change": "edited"}
# The states of a task that may be retried (as a new task).
RETRIABLE = (State.FAILURE, State.CANCELLED)
# A task's own callback, and a global webhook of failures (nothing is ever called here).
CALLBACK = "http://hooks.example/own"
HOOKS = "FAILURE=http://hooks.example/failed"
# Failures a record keeps: fewer than the API's, so that the older ones are seen to go.
ERRORS_KEPT = 1
# A run's wait or run seconds as a finish gives them (None: not known), over a few buckets.
seconds = st.none() | st.sampled_from([0.0, 0.004, 0.2, 7.5, 4000.0])

# The searchable params of the machine's types, and the longest value indexed: `reverse`'s
# text is "x" * 1 to 12, indexed up to 6 long.
SEARCHABLE = {"reverse": ("text",)}
SEARCH_VALUE_BYTES = 6
# The search indexes of every task (core/lua/task.lua).
SEARCH_INDEXES = ("ids", "created", "finished")
# What the invariants read, in one round trip: per key its type and, by that type, a sorted
# set's members and scores, a hash's fields, a string, a list's length, a stream's entries
# from ARGV[1] on; false when missing.
READ = """
local out = {}
for i, key in ipairs(KEYS) do
  local kind = redis.call('TYPE', key)['ok']
  local value = false
  if kind == 'zset' then value = redis.call('ZRANGE', key, 0, -1, 'WITHSCORES')
  elseif kind == 'hash' then value = redis.call('HGETALL', key)
  elseif kind == 'string' then value = redis.call('GET', key)
  elseif kind == 'list' then value = redis.call('LLEN', key)
  elseif kind == 'stream' then value = redis.call('XRANGE', key, ARGV[1], '+')
  end
  out[i] = {kind, value}
end
return out
"""


def celery_meta(task_id: str, status: str) -> ResultMeta:
    """Celery's meta of a task in `status`, as the worker's claim and finish carry it."""
    return ResultMeta(json.dumps({"status": status, "result": None, "task_id": task_id}), 0)


# A ledger entry: model, first, last, task id.
Entry = tuple[str, int, int, str]

runners = st.sampled_from([f"w{n}:{pid}" for n in (1, 2) for pid in (100, 200)])
priorities = st.integers(0, 9)
ranges = st.builds(
    lambda model, first, count: (model, first, first + count - 1),
    st.sampled_from(MODELS),
    st.integers(1, 12),
    st.integers(1, 4),
)
# A due time, 1 to 60 minutes ahead, in ms (moment() adds the ISO text core.transitions takes).
due_times = st.integers(1, 60).map(lambda minutes: now_ms() + minutes * 60_000)
creations = {
    "name": st.sampled_from(NAMES),
    "owner": st.sampled_from(OWNERS),
    "priority": priorities,
    "due": st.none() | due_times,
    "serials": ranges,
    "max_waiting": st.sampled_from([2, 100]),
    "line": st.sampled_from([line.name for line in LINES]),
    # an Idempotency-Key and the request's digest
    "key": st.none() | st.tuples(st.sampled_from(["k1", "k2"]), st.sampled_from(["d1", "d2"])),
    "callback_url": st.sampled_from(["", CALLBACK]),
}


@pytest.fixture(autouse=True)
def shrink_within_the_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hypothesis shrinks a failure for up to five minutes, but here every run of the machine
    costs Redis round trips: past pytest's 120 s timeout the failing example would be lost.
    Past this budget Hypothesis reports the smallest example found so far (its warning still
    speaks of five minutes)."""
    monkeypatch.setattr(engine, "MAX_SHRINKING_SECONDS", SHRINK_SECONDS)


def moment(ms: int) -> tuple[str, int]:
    """A moment as core.transitions takes it: ISO text and ms."""
    return iso(datetime.fromtimestamp(ms / 1000, UTC)), ms


def params_of(name: str, serials: Reservation) -> dict[str, Any]:
    """A task's params; a ranged task's name the range it needs."""
    model, first, last = serials
    if name == SERIALS:
        return {"code_model": model, "number": first, "count": last - first + 1}
    if name == SEATS:
        return {"seat": first, "n": last - first + 1}
    return {"text": "x" * first}


def searched_of(name: str, params: dict[str, Any]) -> list[str]:
    """The values of a task's searchable params its indexes hold (as api.submit finds)."""
    return searched(name, SEARCHABLE.get(name, ()), params, SEARCH_VALUE_BYTES)


def reservation_of(name: str, params: dict[str, Any] | None) -> Reservation | None:
    """The range a type's declaration reserves for these params (as api.submit does)."""
    declared = RANGED.get(name)
    if declared is None or params is None:
        return None
    return declared.ledger_id(params), *declared.bounds(params)


@dataclass
class Task:
    """What the model expects of one record (and of its keys around it)."""

    name: str
    owner: str
    params: dict[str, Any]
    priority: int
    state: State
    line: str
    turn: int = 0
    version: int = 1
    attempts: int = 0
    runners: list[str] = field(default_factory=list)  # who ran each attempt, in order
    lease: bool = False  # the running attempt holds its lease
    cancel_requested: bool = False
    stop_ms: int = 0  # when a run asked to stop is stopped hard (its cancelling score)
    outbox: bool = False
    placed: int = 0  # when it last took its place in line (the model's clock)
    due_ms: int | None = None  # its score in the postponed set
    entry: Entry | None = None  # its serial reservation
    pages: int = 0
    progress: dict[str, Any] | None = None
    forget: bool = False  # scheduled to be forgotten (in the expiry set)
    idempotency: tuple[str, str] | None = None  # (owner, key)
    meta: str | None = None  # the status Celery's meta of it holds (None: it has none)
    # Its last run ended without ending it (lost and put back in line, or retried): no runner
    # until the next claim.
    requeued: bool = False
    errors: list[tuple[str, str, int]] = field(default_factory=list)  # type, message, attempt
    retry_of: str | None = None  # the ended task it runs again
    retried_by: str | None = None  # the last task that ran it again
    clone_of: str | None = None
    callback_url: str = ""
    planned: bool = False  # ended, and its webhooks planned by the deliverer
    # The values of its searchable params its indexes hold (core.searchable.searched).
    searched: list[str] = field(default_factory=list)

    @property
    def stored_success(self) -> bool:
        """Celery's result backend stored SUCCESS for it (nothing overwrites that)."""
        return self.meta == State.SUCCESS

    @property
    def runner(self) -> str | None:
        return self.runners[-1] if self.runners and not self.requeued else None


class RecordMachine(RuleBasedStateMachine):
    """Up to MAX_TASKS unfinished tasks at a time, under a key prefix of its own."""

    tasks = Bundle("tasks")
    # Turns of a quorum queue (worker.consumer binds each to the head of the line).
    quorum = False
    # The ended states a global webhook hears of, as the ending scripts are told: an end in
    # another state, of a task without a callback_url, stays out of the webhook outbox.
    hearing: Iterable[str] = heard(HOOKS)

    def __init__(self) -> None:
        super().__init__()
        self.keys = Keys(f"{run_name('machine-')}:")
        self.client = redis.Redis(decode_responses=True)
        self.lines = line_keys(self.keys.prefix, LINES)
        waiting = {name: keys.line for name, keys in self.lines.items()}
        self.on = {
            name: Transitions(self.client, keys, waiting) for name, keys in self.lines.items()
        }
        self.results = ResultWrites(self.client)
        self.reader = self.client.register_script(READ)
        # every index set the tasks' names and owners could put a task in
        families = {self.keys.index_family()}
        for name in NAMES:
            for owner in (*OWNERS, ADOPTED):
                for line in LINES:
                    families.update(self.keys.families(name, owner, line.name))
        self.index_keys = sorted(
            f"{family}{suffix}"
            for family in families
            for suffix in ["all", *(f"state:{state}" for state in State)]
        )
        self.static = set(self.index_keys)
        # index families of searchable params' values, as tasks come to them
        self.param_families: set[str] = set()
        self.model: dict[str, Task] = {}  # records that exist
        self.gone: dict[str, Task] = {}  # records deleted
        self.ledger: set[Entry] = set()
        self.used: set[Entry] = set()  # reservations of tasks that ran: never given back
        self.idempotency: dict[tuple[str, str], tuple[str, str]] = {}
        # stale runs that tried to write: (task, token, and what the task was then)
        self.tried: set[tuple[str, int, int, State, bool]] = set()
        self.clock = 0
        self.told = ""  # the last change of the stream of changes checked
        # run times recorded by successful finishes (core.estimates), newest first, by list
        self.runtimes: dict[str, list[int]] = {}
        # the ended-task figures the recorded ends add up to (core.task_metrics): the
        # counting fields, and the sums of seconds
        self.figures: Counter[str] = Counter()
        self.sums: dict[str, float] = {}

    def teardown(self) -> None:
        for key in self.client.scan_iter(f"{self.keys.prefix}*", count=1000):
            self.client.delete(key)
        self.client.close()

    # The model's helpers.

    def _of(self, task_id: str) -> Transitions:
        """The transitions of the task's line, as its callers find it from its record."""
        return self.on[(self.model.get(task_id) or self.gone[task_id]).line]

    def _ids(self, *states: State, lease: bool | None = None) -> list[str]:
        return sorted(
            task_id
            for task_id, task in self.model.items()
            if task.state in states and lease in (None, task.lease)
        )

    def _unfinished(self) -> list[str]:
        return [task_id for task_id, task in self.model.items() if task.state not in TERMINAL]

    def _waiting(self, *names: str) -> list[str]:
        return sorted(
            task_id
            for task_id, task in self.model.items()
            if task.name in names and task.state in WAITING
        )

    def _in_outbox(self) -> list[str]:
        return sorted(task_id for task_id, task in self.model.items() if task.outbox)

    def _stale_runs(self) -> list[tuple[str, int]]:
        """(task, token) of the runs that no longer hold their task, and have not tried to
        write since the task last changed hands or ended."""
        return [
            (task_id, token)
            for task_id, task in sorted({**self.gone, **self.model}.items())
            for token in range(1, task.attempts + 1)
            if not (task_id in self.model and task.state == State.STARTED) or token < task.attempts
            if (task_id, token, task.attempts, task.state, task_id in self.model) not in self.tried
        ]

    def _line(self, line: str) -> list[str]:
        queued = [
            (task_id, task)
            for task_id, task in self.model.items()
            if task.state == State.QUEUED and task.line == line
        ]
        queued.sort(key=lambda item: (-item[1].priority, item[1].placed))
        return [task_id for task_id, _ in queued]

    def _enqueue(self, task: Task) -> int:
        task.turn += 1
        self.clock += 1
        task.placed = self.clock
        task.outbox = True
        return task.turn

    def _clash(self, model: str, first: int, last: int) -> Entry | None:
        """The entry the scripts report: the one starting last at or below `last`."""
        below = [entry for entry in self.ledger if entry[0] == model and entry[1] <= last]
        if below:
            top = max(below, key=lambda entry: entry[1])
            if top[2] >= first:
                return top
        return None

    def _give_back(self, task: Task) -> None:
        """A task that never ran gives its range back."""
        if task.entry is not None and task.attempts == 0:
            self.ledger.discard(task.entry)
            task.entry = None

    def _ended(
        self, task: Task, final: State, waited: float | None = None, ran: float | None = None
    ) -> None:
        """The model records an end: its state, forgotten in time, and counted once in the
        figures, with the wait and run seconds its finish gave."""
        task.state = final
        task.forget = True
        self.figures[f"ended|{task.name}|{final}"] += 1
        for histogram, time in ((task_metrics.WAIT, waited), (task_metrics.RUN, ran)):
            if time is not None:
                self.figures[f"{histogram}|{task.name}|{task_metrics.bucket(time)}"] += 1
                total = f"{histogram}_sum|{task.name}"
                self.sums[total] = self.sums.get(total, 0.0) + time

    def _footprint(self, task_id: str) -> list[Any]:
        """All a run's write could touch: compared before and after a write that must fail."""
        keys = self.lines[(self.model.get(task_id) or self.gone[task_id]).line]
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(keys.task(task_id))
        pipe.get(keys.lease(task_id))
        pipe.lrange(keys.pages(task_id), 0, -1)
        pipe.xlen(keys.events(task_id))
        pipe.get(keys.meta(task_id))
        for key in (keys.cancelling, keys.expiry, keys.line, keys.outbox, keys.scheduled):
            pipe.zscore(key, task_id)
        return pipe.execute()

    # Rules: the API.

    @initialize(target=tasks, **creations)
    def first_task(self, serials: Reservation, **creation: Any) -> str | MultipleResults[str]:
        """Every run starts with a task (then rules that need one can run from the start)."""
        return self._create(params=params_of(creation["name"], serials), **creation)

    @precondition(lambda self: len(self._unfinished()) < MAX_TASKS)
    @rule(target=tasks, **creations)
    def create(self, serials: Reservation, **creation: Any) -> str | MultipleResults[str]:
        """Create a task: queued now or postponed; a serial task reserves its range."""
        return self._create(params=params_of(creation["name"], serials), **creation)

    def _create(
        self,
        name: str,
        owner: str,
        priority: int,
        due: int | None,
        max_waiting: int,
        key: tuple[str, str] | None,
        line: str,
        params: dict[str, Any],
        link: Link | None = None,
        callback_url: str = "",
    ) -> str | MultipleResults[str]:
        """Create a task; `link`: as a retry or a clone of another task. A creation refused
        changes nothing."""
        task_id = f"t{len(self.model) + len(self.gone)}"  # ids are never reused
        reserve = reservation_of(name, params)
        refusal = self._refusal(owner, max_waiting, key, reserve, link)
        minute = now_ms() // 60_000
        before = None if refusal is None else self._creation_footprint(task_id, owner, minute, link)
        outcome = self.on[line].create(
            task_id,
            name,
            params,
            priority,
            owner,
            None if due is None else moment(due),
            max_waiting,
            key,
            10_000,
            reserve,
            link=link,
            callback_url=callback_url,
            searched=searched_of(name, params),
        )
        if refusal is not None:
            assert outcome == refusal
            assert self._creation_footprint(task_id, owner, minute, link) == before
            return multiple()

        state = State.QUEUED if due is None else State.SCHEDULED
        task = Task(name, owner, params, priority, state, line, callback_url=callback_url)
        task.searched = searched_of(name, params)
        self.param_families.update(self.keys.families(name, owner, line, task.searched))
        if reserve is not None:
            task.entry = (*reserve, task_id)
            self.ledger.add(task.entry)
        if key is not None:
            task.idempotency = (owner, key[0])
            self.idempotency[owner, key[0]] = (task_id, key[1])
        turn = 0
        if due is None:
            turn = self._enqueue(task)
        else:
            task.due_ms = due
        self.model[task_id] = task
        assert isinstance(outcome, Created), outcome
        if link is not None:
            self._linked(task_id, link)
        assert (outcome.state, outcome.turn) == (task.state, turn)
        record = outcome.snapshot.record
        assert (record.id, record.state, record.params) == (task_id, task.state, params)
        assert (record.priority, record.owner, record.version) == (priority, owner, 1)
        assert (record.attempts, record.line) == (0, line)
        assert (record.retry_of, record.clone_of) == (task.retry_of, task.clone_of)
        assert record.callback_url == (callback_url or None)
        assert record.not_before == (None if due is None else moment(due)[0])
        position = self._line(line).index(task_id) + 1 if due is None else None
        assert outcome.snapshot.position == position
        return task_id

    def _refusal(
        self,
        owner: str,
        max_waiting: int,
        key: tuple[str, str] | None,
        reserve: Reservation | None,
        link: Link | None,
    ) -> object | None:
        """What refuses a creation, as the script checks, first things first; None if
        nothing does."""
        if key is not None and (owner, key[0]) in self.idempotency:
            return Existing(*self.idempotency[owner, key[0]])
        if link is not None and link.kind == "retry":
            origin = self.model.get(link.task_id)
            if origin is None:
                return Unknown()
            if origin.state not in RETRIABLE:
                return Conflict(origin.state)
            # Retried once: a retry replaces another only if it is gone and the caller saw it.
            by = origin.retried_by
            if by is not None and (by != link.seen_retry or by in self.model):
                return Retried(by)
        if sum(t.owner == owner and t.state in WAITING for t in self.model.values()) >= max_waiting:
            return Full()
        clash = None if reserve is None else self._clash(*reserve)
        if clash is not None:
            return Overlap(clash[1], clash[2], clash[3])
        return None

    def _creation_footprint(
        self, task_id: str, owner: str, minute: int, link: Link | None
    ) -> dict[str, Any]:
        """All a creation could touch: the keys the invariants read (every record, index,
        line and ledger), the new task's keys, the owner's counts of creations (this minute
        and the next, should it begin meanwhile) and of bytes, the creation sequence, the
        history of the task it retries and the stream of changes."""
        keys = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.exists(keys.task(task_id), keys.history(task_id), keys.events(task_id))
        pipe.mget(keys.rate(owner, minute), keys.rate(owner, minute + 1))
        pipe.get(keys.usage(owner))
        pipe.get(keys.seq)
        pipe.lrange(keys.history(link.task_id if link else ""), 0, -1)
        pipe.xlen(keys.line_events)
        names = ["new task's keys", "creations", "bytes", "sequence", "history", "changes"]
        return {"read": self._read(), **dict(zip(names, pipe.execute(), strict=True))}

    def _linked(self, task_id: str, link: Link) -> None:
        """A retry or clone was created: linked from it, and for a retry from the task it
        retries too, whose version, history and line's stream of changes say so."""
        task = self.model[task_id]
        keys = self.keys
        pipe = self.client.pipeline(transaction=False)
        pipe.lrange(keys.history(task_id), 0, -1)
        pipe.lrange(keys.history(link.task_id), -1, -1)
        pipe.xrevrange(keys.line_events, count=2)
        history, last_changes, [created, retried] = pipe.execute()
        [change] = [json.loads(entry) for entry in history]
        del change["at"]
        assert change == {"change": "created", "state": task.state, f"{link.kind}_of": link.task_id}
        assert created[1]["kind"] == "created" and created[1]["id"] == task_id
        if link.kind == "clone":
            task.clone_of = link.task_id
            return
        task.retry_of = link.task_id
        origin = self.model[link.task_id]
        origin.retried_by = task_id
        origin.version += 1
        [last_change] = [json.loads(entry) for entry in last_changes]
        del last_change["at"]
        assert last_change == {"change": "retried", "by": task_id}
        del retried[1]["at"]
        assert retried[1] == {
            "kind": "retried",
            "id": link.task_id,
            "state": origin.state,
            "name": origin.name,
            "owner": origin.owner,
            "line": origin.line,
            "by": task_id,
        }

    def _origins(self) -> list[str]:
        """The tasks a retry or a clone may name, gone ones too (deleted since the caller
        read them); not an adopted task whose params its type would refuse."""
        return sorted(
            task_id
            for task_id, task in {**self.model, **self.gone}.items()
            if not (task.owner == ADOPTED and task.name in RANGED)
        )

    @precondition(lambda self: len(self._unfinished()) < MAX_TASKS and self._origins())
    @rule(
        target=tasks,
        data=st.data(),
        cancel=st.booleans(),
        owner=creations["owner"],
        max_waiting=creations["max_waiting"],
        key=creations["key"],
        line=creations["line"],
    )
    def retry_task(
        self,
        data: st.DataObject,
        cancel: bool,
        owner: str,
        max_waiting: int,
        key: tuple[str, str] | None,
        line: str,
    ) -> str | MultipleResults[str]:
        """Run a task again as a new one of its type, params and priority, linked both ways;
        refused if it is gone, has not ended FAILURE or CANCELLED, or was retried by a task
        that is still there or that the caller did not see (`seen`: the `retried_by` the
        caller read, maybe since replaced). On any line: its type's may have moved. Half the
        time one that ended so is picked, if any; `cancel`: a waiting one is cancelled first."""
        origins = st.sampled_from(self._origins())
        if ended := [t for t in self._origins() if t in self._ids(*RETRIABLE)]:
            origins = st.sampled_from(ended) | origins
        origin_id = data.draw(origins, label="origin")
        if cancel and origin_id in self._ids(*WAITING):
            self._cancel(origin_id, 30)
        retries = sorted(
            task_id
            for task_id, task in {**self.model, **self.gone}.items()
            if task.retry_of == origin_id
        )
        seen = data.draw(st.sampled_from([None, *retries]), label="seen retry")
        return self._retry(origin_id, seen, owner, max_waiting, key, line)

    def _retry(
        self,
        origin_id: str,
        seen: str | None,
        owner: str,
        max_waiting: int,
        key: tuple[str, str] | None,
        line: str,
    ) -> str | MultipleResults[str]:
        origin = self.model.get(origin_id) or self.gone[origin_id]
        return self._create(
            origin.name,
            owner,
            origin.priority,
            None,
            max_waiting,
            key,
            line,
            params=origin.params,
            link=Link("retry", origin_id, seen),
        )

    def _live_retries(self) -> list[str]:
        """Retries of tasks that are still there."""
        return sorted(t for t, task in self.model.items() if task.retry_of in self.model)

    @precondition(lambda self: len(self._unfinished()) < MAX_TASKS and self._live_retries())
    @rule(
        target=tasks,
        data=st.data(),
        delete=st.booleans(),
        owner=creations["owner"],
        line=creations["line"],
    )
    def retry_again(
        self, data: st.DataObject, delete: bool, owner: str, line: str
    ) -> str | MultipleResults[str]:
        """A task is retried again by one who read it retried: refused while that retry is
        there (a second click runs nothing twice); replaced by a new retry, linked both ways,
        once that retry is deleted (`delete`, unless it runs) or forgotten."""
        retry_id = data.draw(st.sampled_from(self._live_retries()), label="retry")
        origin_id = self.model[retry_id].retry_of
        assert origin_id is not None
        if delete and self.model[retry_id].state != State.STARTED:
            data.draw(consumes(self.tasks).filter(retry_id.__eq__), label="deleted")
            self._delete(retry_id, unpublished=False)
        return self._retry(origin_id, retry_id, owner, 100, None, line)

    @precondition(lambda self: len(self._unfinished()) < MAX_TASKS and self._origins())
    @rule(
        target=tasks,
        data=st.data(),
        new_params=st.booleans(),
        priority=st.none() | priorities,
        **{name: creations[name] for name in creations if name not in ("name", "priority")},
    )
    def clone_task(
        self,
        data: st.DataObject,
        new_params: bool,
        serials: Reservation,
        priority: int | None,
        **creation: Any,
    ) -> str | MultipleResults[str]:
        """Submit a new task of any task's type, with its params or others, its priority or
        another, maybe postponed, linked from the new task only. The script does not read
        the task cloned (the API found it first): one deleted meanwhile is cloned all the
        same."""
        origin_id = data.draw(st.sampled_from(self._origins()), label="origin")
        origin = self.model.get(origin_id) or self.gone[origin_id]
        return self._create(
            origin.name,
            priority=origin.priority if priority is None else priority,
            params=params_of(origin.name, serials) if new_params else origin.params,
            link=Link("clone", origin_id),
            **creation,
        )

    @rule(
        task_id=tasks,
        version=st.sampled_from(["any", "current", "stale"]),
        new_params=st.booleans(),
        serials=ranges,
        priority=st.none() | priorities,
        postpone=st.sampled_from(["keep", "clear", "set"]),
        due=due_times,
    )
    def edit(
        self,
        task_id: str,
        version: str,
        new_params: bool,
        serials: Reservation,
        priority: int | None,
        postpone: Postpone,
        due: int,
    ) -> None:
        """Change params (swapping a serial range), priority, or postpone / bring back."""
        self._edit(task_id, version, new_params, serials, priority, postpone, due)

    @precondition(lambda self: self._waiting(*RANGED))
    @rule(data=st.data(), serials=ranges)
    def swap_serials(self, data: st.DataObject, serials: Reservation) -> None:
        """New params of a waiting ranged task swap its range, or are refused as a whole."""
        task_id = data.draw(st.sampled_from(self._waiting(*RANGED)))
        self._edit(task_id, "any", True, serials, None, "keep", 0)

    def _edit(
        self,
        task_id: str,
        version: str,
        new_params: bool,
        serials: Reservation,
        priority: int | None,
        postpone: Postpone,
        due: int,
    ) -> None:
        task = self.model[task_id]
        seen = {"any": None, "current": task.version, "stale": task.version - 1}[version]
        params = params_of(task.name, serials) if new_params else None
        reserve = reservation_of(task.name, params)
        searched = None if params is None else searched_of(task.name, params)
        families = (
            None
            if searched is None
            else self.keys.families(task.name, task.owner, task.line, searched)
        )
        outcome = self._of(task_id).edit(
            task_id,
            seen,
            params,
            priority,
            postpone,
            moment(due),
            CHANGE,
            reserve,
            families=families,
        )
        if task.state not in WAITING:
            assert outcome == Conflict(task.state)
            return
        if seen is not None and seen != task.version:
            assert outcome == VersionMismatch(task.version)
            return
        if reserve is not None and task.attempts > 0 and task.entry != (*reserve, task_id):
            # It ran: any serial of its range may be out there, so the range is its for good.
            assert outcome == Kept(task.attempts)
            return
        if reserve is not None:
            if task.entry is not None:
                self.ledger.discard(task.entry)
            clash = self._clash(*reserve)
            if clash is not None:
                if task.entry is not None:
                    self.ledger.add(task.entry)
                assert outcome == Overlap(clash[1], clash[2], clash[3])
                return
            task.entry = (*reserve, task_id)
            self.ledger.add(task.entry)
        if params is not None and searched is not None and families is not None:
            task.params = params
            task.searched = searched
            self.param_families.update(families)
        requeue = False
        if priority is not None and priority != task.priority:
            task.priority = priority
            requeue = task.state == State.QUEUED
        if postpone == "set":
            task.due_ms = due
            if task.state == State.QUEUED:
                task.state = State.SCHEDULED
                task.outbox = False
                task.turn += 1  # the turn in flight is superseded
            requeue = False
        elif postpone == "clear" and task.state == State.SCHEDULED:
            task.state = State.QUEUED
            task.due_ms = None
            requeue = True
        turn = self._enqueue(task) if requeue else 0
        task.version += 1
        assert outcome == Edited(turn)

    @precondition(lambda self: self._ids(State.SCHEDULED))
    @rule(data=st.data(), late=st.booleans())
    def release(self, data: st.DataObject, late: bool) -> None:
        """The scheduler puts a due postponed task back in line. `late`: any task, as when an
        edit, a cancel or another release got to it since the scheduler saw it due."""
        task_id = data.draw(
            st.sampled_from(sorted(self.model) if late else self._ids(State.SCHEDULED))
        )
        turn = self._of(task_id).release(task_id)
        task = self.model[task_id]
        if task.state != State.SCHEDULED:
            assert turn == 0
            return
        task.state = State.QUEUED
        task.due_ms = None
        assert turn == self._enqueue(task)

    @precondition(lambda self: self._unfinished())
    @rule(task_id=tasks, grace=st.integers(1, 30))
    def cancel(self, task_id: str, grace: int) -> None:
        """Cancel: a waiting task at once; a running one is asked to stop within `grace` s."""
        self._cancel(task_id, grace)

    def _cancel(self, task_id: str, grace: int) -> None:
        stop_ms = now_ms() + grace * 1000
        outcome = self._of(task_id).cancel(task_id, stop_ms, FOREVER, heard=self.hearing)
        task = self.model[task_id]
        if task.state in TERMINAL:
            assert outcome == Ended(task.state)
        elif task.state == State.STARTED:
            assert outcome == Cancelling()
            if not task.cancel_requested:  # asking again does not put the hard stop off
                task.cancel_requested = True
                task.stop_ms = stop_ms
        else:
            assert outcome == Cancelled()
            self._give_back(task)
            self._ended(task, State.CANCELLED)
            task.outbox = False
            task.due_ms = None
            task.version += 1

    @rule(target=tasks, task_id=consumes(tasks), unpublished=st.booleans())
    def delete(self, task_id: str, unpublished: bool) -> str | MultipleResults[str]:
        """Forget a task (the bundle keeps the ids of records that exist)."""
        return self._delete(task_id, unpublished)

    def _delete(self, task_id: str, unpublished: bool) -> str | MultipleResults[str]:
        outcome = self._of(task_id).delete(task_id, unpublished=unpublished)
        task = self.model[task_id]
        if task.state == State.STARTED:
            assert outcome == Running()
            return task_id
        assert outcome == Deleted(task.state)
        self._give_back(task)
        if unpublished and task.idempotency is not None:
            del self.idempotency[task.idempotency]
        self.gone[task_id] = self.model.pop(task_id)
        self._nothing_there(task_id)
        return multiple()

    def _nothing_there(self, task_id: str) -> None:
        """Every call about a deleted task finds nothing and leaves nothing behind (a late
        message or a stale run does not bring a record back)."""
        before = self._footprint(task_id)
        assert before == [{}, None, [], 0, None, None, None, None, None, None]
        transitions = self._of(task_id)
        assert transitions.edit(task_id, None, {}, 1, "clear", None, CHANGE, None) == Unknown()
        assert transitions.cancel(task_id, FOREVER, FOREVER) == Unknown()
        assert transitions.delete(task_id) == Unknown()
        assert transitions.release(task_id) == 0
        meta = celery_meta(task_id, "STARTED")
        claimed = transitions.claim(
            task_id,
            "1",
            True,
            "reverse",
            {},
            "w1:100",
            LEASE_MS,
            False,
            forget_ms=FOREVER,
            meta=meta,
        )
        assert claimed == Skipped("unknown")
        claimed = transitions.claim(
            task_id,
            "1",
            False,
            "reverse",
            {},
            "w1:100",
            LEASE_MS,
            False,
            forget_ms=FOREVER,
            meta=meta,
            quorum=True,
        )
        line = self._line(self.gone[task_id].line)
        assert claimed == (PassedOn("unknown") if line else Skipped("unknown"))
        finished = transitions.finish(task_id, State.SUCCESS, None, FOREVER, runner="w1:100")
        assert finished is False
        assert transitions.retry(task_id, 1, {"type": "Late"}, FOREVER, kept=ERRORS_KEPT) == Stale()
        assert transitions.confirm([(task_id, 1)]) == 0
        assert self._footprint(task_id) == before

    @precondition(lambda self: self._in_outbox())
    @rule(data=st.data(), also=st.lists(tasks, max_size=1), old=st.booleans())
    def confirm(self, data: st.DataObject, also: list[str], old: bool) -> None:
        """RabbitMQ confirms turns: the current one leaves the outbox, an old one does not."""
        task_ids = [data.draw(st.sampled_from(self._in_outbox())), *also]
        turns = []
        for task_id in task_ids:
            turn = self.model[task_id].turn
            if old and turn > 0:
                turn = data.draw(st.integers(0, turn - 1), label=f"old turn of {task_id}")
            turns.append((task_id, turn))
        removed = 0
        for line, transitions in self.on.items():  # as the API and the scheduler confirm
            removed += transitions.confirm([t for t in turns if self.model[t[0]].line == line])
        expected = 0
        for task_id, turn in turns:
            task = self.model[task_id]
            if task.turn == turn and task.outbox:
                task.outbox = False
                expected += 1
        assert removed == expected

    # Rules: the worker.

    def _claim(
        self, task_id: str, turn: int, redelivered: bool, runner: str, turnless: bool = False
    ) -> None:
        """A message of `turn` (`turnless`: sent without one, which stands for turn 0)."""
        task = self.model[task_id]
        outcome = self._of(task_id).claim(
            task_id,
            None if turnless else str(turn),
            redelivered,
            task.name,
            {},
            runner,
            LEASE_MS,
            task.name in RANGED,
            forget_ms=FOREVER,
            meta=celery_meta(task_id, "STARTED"),  # stored only if claimed, as the worker's
            quorum=self.quorum,
            heard=self.hearing,
        )
        if self.quorum and not turnless:
            self._take_turn(task_id, outcome, runner)
        elif turn != task.turn:
            assert outcome == Skipped("superseded")
        elif task.state == State.STARTED and not redelivered:
            assert outcome == Skipped("duplicate")
        elif task.state == State.STARTED and task.lease:
            assert outcome == Held(f"{task.attempts} {task.runner}")
        elif task.state == State.STARTED and task.stored_success:
            # Celery's result backend stored the lost run's SUCCESS itself: that is its end,
            # recorded rather than run again (as a quorum turn and the recovery record it).
            assert outcome == Skipped(State.SUCCESS)
            self._ended(task, State.SUCCESS)
        elif task.state == State.STARTED and task.cancel_requested:
            # The run asked to stop died: that is the stop, and the task is forgotten in time.
            assert outcome == Skipped("cancelled")
            self._ended(task, State.CANCELLED)
        elif task.state != State.QUEUED and task.state != State.STARTED:
            assert outcome == Skipped(task.state)
        else:
            self._claimed(task, outcome, runner)

    def _claimed(self, task: Task, outcome: object, runner: str) -> None:
        """A new attempt of the task began, Celery's STARTED of it stored with the claim."""
        assert outcome == Claimed(task.attempts + 1, task.params)
        task.state = State.STARTED
        task.attempts += 1
        task.runners.append(runner)
        task.requeued = False
        task.lease = True
        task.cancel_requested = False
        task.outbox = False
        task.progress = None
        task.pages = 0
        if not task.stored_success:
            task.meta = State.STARTED
        if task.entry is not None:
            self.used.add(task.entry)

    def _take_turn(self, task_id: str, outcome: object, runner: str) -> None:
        """A quorum queue's turn bound to this task: whatever its turn number, a waiting task
        runs; a started one waits for its live run, or runs again once the run was lost,
        unless Celery stored its SUCCESS or it was asked to stop (then it ends so). A turn
        that came to nothing is passed on while tasks wait."""
        task = self.model[task_id]
        if task.state == State.STARTED and task.lease:
            assert outcome == Held(f"{task.attempts} {task.runner}")
            return
        if task.state == State.STARTED and (task.stored_success or task.cancel_requested):
            self._ended(task, State.SUCCESS if task.stored_success else State.CANCELLED)
        if task.state in (State.QUEUED, State.STARTED):
            self._claimed(task, outcome, runner)
        else:
            expected = PassedOn(task.state) if self._line(task.line) else Skipped(task.state)
            assert outcome == expected

    def _head(self, line: str) -> str | None:
        """What the next turn of a line's quorum queue runs: a started task of the line (the
        first created), else the first of the line."""
        started = sorted(
            (task_id for task_id in self._ids(State.STARTED) if self.model[task_id].line == line),
            key=lambda task_id: int(task_id[1:]),
        )
        waiting = self._line(line)
        return started[0] if started else waiting[0] if waiting else None

    @rule(
        task_id=tasks,
        data=st.data(),
        stale=st.booleans(),
        redelivered=st.booleans(),
        runner=runners,
        turnless=st.booleans(),
    )
    def claim(
        self,
        task_id: str,
        data: st.DataObject,
        stale: bool,
        redelivered: bool,
        runner: str,
        turnless: bool,
    ) -> None:
        """A message arrives: of the task's current turn, of an older one, or of none."""
        turn = self.model[task_id].turn
        if stale and turn > 0:
            turn = data.draw(st.integers(0, turn - 1), label="stale turn")
        self._claim(task_id, turn, redelivered, runner, turnless=turnless and turn == 0)

    @rule(task_id=tasks, runner=runners)
    def astray(self, task_id: str, runner: str) -> None:
        """A turn of the task reaches another line's queue: that line's worker leaves it, and
        nothing of the task changes (a quorum turn goes back while that line has tasks)."""
        if task_id not in self.model:
            return
        task = self.model[task_id]
        other = next(line for line in self.on if line != task.line)
        before = self._footprint(task_id)
        outcome = self.on[other].claim(
            task_id,
            str(task.turn),
            False,
            task.name,
            {},
            runner,
            LEASE_MS,
            task.name in RANGED,
            forget_ms=FOREVER,
            quorum=self.quorum,
        )
        waiting = self.quorum and self._line(other)
        assert outcome == (PassedOn("line") if waiting else Skipped("line"))
        assert self._footprint(task_id) == before

    @precondition(lambda self: len(self._unfinished()) < MAX_TASKS)
    @rule(target=tasks, name=st.sampled_from(NAMES), runner=runners, line=creations["line"])
    def adopt(self, name: str, runner: str, line: str) -> str | MultipleResults[str]:
        """A message sent by name without the API (Flower, another tool) brings its own task:
        adopted with turn 0 and run at once, or refused if its type takes serials."""
        task_id = f"t{len(self.model) + len(self.gone)}"
        params = {"text": "adopted"}
        outcome = self.on[line].claim(
            task_id,
            None,
            False,
            name,
            params,
            runner,
            LEASE_MS,
            name in RANGED,
            forget_ms=FOREVER,
            heard=self.hearing,
        )
        task = Task(name, ADOPTED, params, 5, State.QUEUED, line)
        self.model[task_id] = task
        if name in RANGED:
            assert outcome == Skipped("refused")
            self._ended(task, State.FAILURE)
            return task_id
        assert outcome == Claimed(1, params)
        task.state = State.STARTED
        task.attempts = 1
        task.runners.append(runner)
        task.lease = True
        return task_id

    @precondition(lambda self: self._ids(State.QUEUED))
    @rule(data=st.data(), runner=runners)
    def deliver(self, data: st.DataObject, runner: str) -> None:
        """A waiting task's current turn reaches a worker: the usual way a run begins. On a
        quorum queue any turn of a line does, bound to its line's head as it is delivered."""
        task_id = data.draw(st.sampled_from(self._ids(State.QUEUED)))
        if self.quorum:
            line = self.model[task_id].line
            head = self.on[line].head()
            expected = self._head(line)
            assert head is not None and head.task_id == expected
            task = self.model[expected]
            assert (head.name, head.params) == (task.name, task.params)
            task_id = expected
        self._claim(task_id, self.model[task_id].turn, False, runner)

    @precondition(lambda self: self._ids(State.STARTED, lease=True))
    @rule(data=st.data())
    def lapse(self, data: st.DataObject) -> None:
        """A run dies or stalls past its lease."""
        task_id = data.draw(st.sampled_from(self._ids(State.STARTED, lease=True)))
        assert self.client.delete(self.keys.lease(task_id)) == 1
        self.model[task_id].lease = False

    @precondition(lambda self: self._ids(State.STARTED, lease=True))
    @rule(data=st.data(), runner=runners)
    def stall(self, data: st.DataObject, runner: str) -> None:
        """A run that wrote some progress and a page stalls past its lease, and its message is
        redelivered: a new attempt (token + 1) starts over, and the stalled run, waking up, can
        no longer write."""
        task_id = data.draw(st.sampled_from(self._ids(State.STARTED, lease=True)))
        self._written(task_id, "progress")
        self._written(task_id, "page")
        task = self.model[task_id]
        stalled = task.attempts
        self.client.delete(self.keys.lease(task_id))
        task.lease = False
        self._claim(task_id, task.turn, True, runner)
        assert task.attempts == stalled + (task.state == State.STARTED)
        self._refused(task_id, stalled)

    @precondition(lambda self: self._ids(State.STARTED))
    @rule(data=st.data(), runner=runners)
    def redeliver(self, data: st.DataObject, runner: str) -> None:
        """RabbitMQ redelivers a running task's message: held, or run again if its run died."""
        task_id = data.draw(st.sampled_from(self._ids(State.STARTED)))
        self._claim(task_id, self.model[task_id].turn, True, runner)

    def _write(self, kind: str, task_id: str, token: int, runner: str) -> bool:
        if kind == "progress":
            return self._of(task_id).progress(task_id, token, {"percent": self.clock})
        if kind == "page":
            return self._of(task_id).page(task_id, token, [self.clock])
        return self._of(task_id).renew(task_id, token, runner, LEASE_MS)

    @precondition(lambda self: self._ids(State.STARTED))
    @rule(data=st.data(), kind=st.sampled_from(["progress", "page", "renew"]))
    def write(self, data: st.DataObject, kind: str) -> None:
        """The running attempt writes with its token (a renewal takes a lapsed lease again)."""
        task_id = data.draw(st.sampled_from(self._ids(State.STARTED)))
        self._written(task_id, kind)

    def _written(self, task_id: str, kind: str) -> None:
        task = self.model[task_id]
        self.clock += 1
        assert self._write(kind, task_id, task.attempts, task.runner or "") is True
        if kind == "progress":
            task.progress = {"percent": self.clock}
        elif kind == "page":
            task.pages += 1
        else:
            task.lease = True

    @precondition(lambda self: self._stale_runs())
    @rule(data=st.data())
    def stale_run_writes(self, data: st.DataObject) -> None:
        """A run that no longer holds its task wakes up: each write is refused, nothing moves."""
        task_id, token = data.draw(st.sampled_from(self._stale_runs()), label="stale run")
        self._refused(task_id, token)

    def _refused(self, task_id: str, token: int) -> None:
        task = self.model.get(task_id) or self.gone[task_id]
        self.tried.add((task_id, token, task.attempts, task.state, task_id in self.model))
        runner = task.runners[token - 1]
        before = self._footprint(task_id)
        for kind in ("progress", "page", "renew"):
            assert self._write(kind, task_id, token, runner) is False
        meta = celery_meta(task_id, "SUCCESS")
        finish = self._of(task_id).finish(
            task_id, State.SUCCESS, None, FOREVER, token=token, meta=meta
        )
        assert finish is False
        assert (
            self._of(task_id).retry(task_id, token, {"type": "Late"}, FOREVER, kept=ERRORS_KEPT)
            == Stale()
        )
        if not (task_id in self.model and task.state == State.STARTED and runner == task.runner):
            # (A later attempt of the same process is no stale run.)
            finish = self._of(task_id).finish(task_id, State.FAILURE, None, FOREVER, runner=runner)
            assert finish is False
        assert self._footprint(task_id) == before

    @precondition(lambda self: self._ids(State.STARTED))
    @rule(
        data=st.data(),
        final=st.sampled_from([State.SUCCESS, State.FAILURE, State.CANCELLED]),
        by_runner=st.booleans(),
        run_ms=st.none() | st.integers(0, 10**6),
        bucket=st.sampled_from(["", "b3"]),
        waited=seconds,
        ran=seconds,
        again=st.booleans(),
    )
    def finish(
        self,
        data: st.DataObject,
        final: State,
        by_runner: bool,
        run_ms: int | None,
        bucket: str,
        waited: float | None,
        ran: float | None,
        again: bool,
    ) -> None:
        """The running attempt ends, named by its token (the pool child) or its runner (the
        worker's main process, or the scheduler once the run is gone); the pool child's
        SUCCESS carries Celery's, stored with it (unless a SUCCESS is stored already), and
        its run time (`run_ms`), kept for estimates by its type and size bucket, the last
        RUNTIMES_KEPT of each; no other end keeps one. The end is counted with the run's
        `waited` and `ran` seconds; `again`: the same finish is sent once more (a retry after
        a lost reply), which changes and counts nothing."""
        task_id = data.draw(st.sampled_from(self._ids(State.STARTED)))
        task = self.model[task_id]
        error = None if final == State.SUCCESS else {"type": "Boom", "message": "it broke"}
        named: dict[str, Any] = {"runner": task.runner} if by_runner else {"token": task.attempts}
        if final == State.SUCCESS and not by_runner:
            named["meta"] = celery_meta(task_id, final)
            if not task.stored_success:
                task.meta = final
        if run_ms is not None:
            named["run_time"] = RunTime(task.name, run_ms, RUNTIMES_KEPT, bucket)
            if final == State.SUCCESS:
                lists = {self.keys.runtimes(task.name), self.keys.runtimes(task.name, bucket)}
                for key in lists:
                    kept = self.runtimes.setdefault(key, [])
                    kept[:0] = [run_ms]
                    del kept[RUNTIMES_KEPT:]
        named.update(waited=waited, ran=ran)
        named.update(heard=self.hearing)
        assert self._of(task_id).finish(task_id, final, error, FOREVER, **named) is True
        for key, kept in self.runtimes.items():
            assert [int(ms) for ms in self.client.lrange(key, 0, -1)] == kept, key
        self._ended(task, final, waited, ran)
        task.lease = False
        if again:
            before = self._footprint(task_id)
            assert self._of(task_id).finish(task_id, final, error, FOREVER, **named) is False
            assert self._footprint(task_id) == before

    @precondition(lambda self: self._ids(State.STARTED))
    @rule(
        data=st.data(),
        due=due_times,
        failure=st.sampled_from(["Flaky", "TimeoutError"]),
        asked=st.booleans(),
    )
    def retry(self, data: st.DataObject, due: int, failure: str, asked: bool) -> None:
        """The running attempt failed in a way its task type retries: the task waits for its
        next attempt, postponed to `due` with its failure recorded; unless a cancel was asked
        for (`asked`: just before; the run then ends as a failure does)."""
        task_id = data.draw(st.sampled_from(self._ids(State.STARTED)))
        if asked:
            self._cancel(task_id, 30)
        self._fail(task_id, due, failure)

    def _fail(self, task_id: str, due: int, failure: str) -> None:
        task = self.model[task_id]
        token = task.attempts
        error = {"type": failure, "message": f"attempt {token} failed"}
        outcome = self._of(task_id).retry(task_id, token, error, due, kept=ERRORS_KEPT)
        if task.cancel_requested:
            assert outcome == Cancelling()
            return
        assert outcome == Retrying(moment(due)[0])
        task.state = State.SCHEDULED
        task.due_ms = due
        task.lease = False
        task.requeued = True
        task.progress = None
        task.errors.append((failure, error["message"], token))

    def _retried(self) -> list[str]:
        return [t for t in self._ids(State.SCHEDULED) if self.model[t].requeued]

    @precondition(lambda self: self._retried())
    @rule(
        data=st.data(),
        runner=runners,
        fails=st.booleans(),
        due=due_times,
        failure=st.sampled_from(["Flaky", "TimeoutError"]),
    )
    def next_attempt(
        self, data: st.DataObject, runner: str, fails: bool, due: int, failure: str
    ) -> None:
        """A retried task's time comes: the scheduler puts it back in line with a new turn,
        and the worker takes that turn (the message of the failed run's turn is refused);
        `fails`: that attempt fails too, and is retried."""
        task_id = data.draw(st.sampled_from(self._retried()))
        task = self.model[task_id]
        failed_turn = task.turn
        turn = self._of(task_id).release(task_id)
        task.state = State.QUEUED
        task.due_ms = None
        assert turn == self._enqueue(task)
        self._claim(task_id, failed_turn, True, runner)
        self._claim(task_id, task.turn, False, runner)
        if fails:
            self._fail(task_id, due, failure)

    @precondition(lambda self: self._ids(State.STARTED))
    @rule(data=st.data(), status=st.sampled_from(["PROGRESS", "SUCCESS"]))
    def store_meta(self, data: st.DataObject, status: str) -> None:
        """Celery's result backend stores the run's state (a SUCCESS before the run records
        its end: its pool child may die right now); a stored SUCCESS is never overwritten."""
        task_id = data.draw(st.sampled_from(self._ids(State.STARTED)))
        task = self.model[task_id]
        meta = {"status": status, "result": None, "task_id": task_id}
        stored = self.results.store(self.keys.meta(task_id), json.dumps(meta), 0)
        assert stored is not task.stored_success
        if stored:
            task.meta = status

    @precondition(lambda self: self._ids(State.STARTED))
    @rule(data=st.data(), node_alive=st.booleans(), quiet=st.booleans())
    def recover(self, data: st.DataObject, node_alive: bool, quiet: bool) -> None:
        """The scheduler settles a run whose lease lapsed: SUCCESS if Celery stored it,
        CANCELLED if asked and its worker is gone, else back in line with a new turn. `quiet`:
        the run renewed too lately to count as lost yet."""
        task_id = data.draw(st.sampled_from(self._ids(State.STARTED)))
        self._recover(task_id, node_alive, quiet)

    def _recover(self, task_id: str, node_alive: bool, quiet: bool) -> None:
        task = self.model[task_id]
        quiet_ms = FOREVER if quiet else 0
        outcome = self._of(task_id).recover(
            task_id, node_alive, FOREVER, quiet_ms, heard=self.hearing
        )
        if task.lease or quiet:
            assert outcome == Alive()
        elif task.stored_success or (task.cancel_requested and not node_alive):
            # (a live worker stops a run asked to stop, and records it itself)
            final = State.SUCCESS if task.stored_success else State.CANCELLED
            assert outcome == Recovered(final)
            self._ended(task, final)
        elif task.cancel_requested:
            assert outcome == Alive()
        else:
            assert outcome == Requeued(self._enqueue(task))
            task.state = State.QUEUED
            task.requeued = True
            task.progress = None

    @precondition(lambda self: self._ids(State.STARTED, lease=True))
    @rule(data=st.data())
    def lose_run(self, data: st.DataObject) -> None:
        """A worker dies with its run and nothing redelivers it: the lease lapses and the
        scheduler settles the run (the usual way a task that ran comes back in line)."""
        task_id = data.draw(st.sampled_from(self._ids(State.STARTED, lease=True)))
        assert self.client.delete(self.keys.lease(task_id)) == 1
        self.model[task_id].lease = False
        self._recover(task_id, node_alive=False, quiet=False)

    @rule(task_id=tasks)
    def reissue(self, task_id: str) -> None:
        """The scheduler gives a waiting task whose turn was lost a new turn, in its place."""
        turn = self._of(task_id).reissue(task_id)
        task = self.model[task_id]
        if task.state != State.QUEUED:
            assert turn == 0
            return
        task.turn += 1
        task.outbox = True
        assert turn == task.turn

    def _unplanned(self) -> list[str]:
        """Ended tasks whose webhooks the deliverer has still to plan: those a URL may hear
        of (a callback_url, or a global webhook of its end's state)."""
        return sorted(
            t
            for t, task in self.model.items()
            if task.state in TERMINAL
            and not task.planned
            and (task.callback_url or task.state in self.hearing)
        )

    @precondition(lambda self: self._unplanned())
    @rule()
    def plan_webhooks(self) -> None:
        """The deliverer (worker.webhooks) takes the ended tasks off the webhook outbox, each
        with one delivery per URL that hears of its end (none: it just leaves)."""
        assert asyncio.run(self._plan()) == len(self._unplanned())
        for task_id in self._unplanned():
            self.model[task_id].planned = True

    async def _plan(self) -> int:
        client = redis.asyncio.Redis(decode_responses=True)
        try:
            deliverer = Deliverer(Settings(key_prefix=self.keys.prefix, webhooks=HOOKS), client)
            waiting = {name: keys.line for name, keys in self.lines.items()}
            deliverer.reads = AsyncTransitions(client, self.keys, waiting)
            try:
                return await deliverer.plan()
            finally:
                await deliverer.close()
        finally:
            await client.aclose()

    @rule(task_ids=st.lists(tasks, max_size=3))
    def read(self, task_ids: list[str]) -> None:
        """The API reads tasks in one round trip: known ones in the order asked, each with
        its place in its line."""
        wanted = list(dict.fromkeys(task_ids))
        snapshots = self.on[MAIN].read([*wanted, "never-created"])
        assert [snapshot.record.id for snapshot in snapshots] == wanted
        for snapshot in snapshots:
            task = self.model[snapshot.record.id]
            assert (snapshot.record.state, snapshot.record.params) == (task.state, task.params)
            assert (snapshot.record.attempts, snapshot.record.line) == (task.attempts, task.line)
            line = self._line(task.line)
            queued = task.state == State.QUEUED
            assert snapshot.position == (line.index(snapshot.record.id) + 1 if queued else None)

    # Invariants, read back from Redis after every step.

    def _read(self) -> dict[str, Any]:
        """The keys the invariants look at, each as its type reads (a sorted set as a list of
        (member, score), the stream of changes as its changes since the last checked), None
        when missing: one round trip, by READ."""
        keys = self.keys
        names = [keys.line_events, *self._index_keys()]
        names += [keys.ledger(ledger) for ledger in LEDGERS]
        names += [keys.search(kind) for kind in SEARCH_INDEXES]
        for sets in self.lines.values():
            names += [sets.line, sets.scheduled, sets.outbox, sets.cancelling, sets.expiry]
        names += [keys.webhooks, keys.webhook_deliveries, keys.webhook_deliveries_by_task]
        names.append(task_metrics.key(keys.prefix))
        for task_id in [*self.model, *self.gone]:
            names += [keys.task(task_id), keys.lease(task_id), keys.pages(task_id)]
            names.append(keys.meta(task_id))
        found = {}
        since = f"({self.told}" if self.told else "-"
        for name, (kind, value) in zip(names, self.reader(keys=names, args=[since]), strict=True):
            if kind == "stream":
                value = [(entry, dict(zip(f[::2], f[1::2], strict=True))) for entry, f in value]
            elif kind == "zset":
                value = list(zip(value[::2], map(float, value[1::2]), strict=True))
            elif kind == "hash":
                value = dict(zip(value[::2], value[1::2], strict=True))
            found[name] = value
        return found

    @invariant()
    def agrees_with_redis(self) -> None:
        found = self._read()
        self._one_state_per_task(found)
        self._in_exactly_its_search_indexes(found)
        self._records_agree(found)
        self._line_postponed_outbox_agree(found)
        self._no_serial_issued_twice(found)
        self._retries_linked_both_ways(found)
        self._changes_name_their_lines(found)
        self._webhooks_follow_their_tasks(found)
        self._ends_counted_once(found)

    def _index_keys(self) -> list[str]:
        """Every index set a task could be in: of every name, owner and line, and of every
        searchable param's value a task has had."""
        dynamic = sorted(
            f"{family}{suffix}"
            for family in self.param_families
            for suffix in ["all", *(f"state:{state}" for state in State)]
        )
        return [*self.index_keys, *(key for key in dynamic if key not in self.static)]

    def _one_state_per_task(self, found: dict[str, Any]) -> None:
        """Each task is in its family's `all` set and in exactly one state set, the state of
        its record (its searchable params' values' families too, as they are now); no other
        task is in any index."""
        keys = self._index_keys()
        members = {key: {member for member, _ in found[key] or []} for key in keys}
        expected: dict[str, set[str]] = {key: set() for key in keys}
        for task_id, task in self.model.items():
            for family in self.keys.families(task.name, task.owner, task.line, task.searched):
                expected[f"{family}all"].add(task_id)
                expected[f"{family}state:{task.state}"].add(task_id)
        assert members == expected
        for task_id, task in self.model.items():
            for owner in (None, task.owner):
                for line in (None, task.line):
                    index = [self.keys.index(s, owner=owner, line=line) for s in State]
                    states = [
                        s for s, key in zip(State, index, strict=True) if task_id in members[key]
                    ]
                    assert states == [task.state], (task_id, owner, line)

    def _in_exactly_its_search_indexes(self, found: dict[str, Any]) -> None:
        """Every kept task is in the id and creation indexes, and in the end index while its
        state is final, by the time its record says it ended (not before it was created); a
        deleted task is in none."""
        members = {kind: dict(found[self.keys.search(kind)] or []) for kind in SEARCH_INDEXES}
        assert set(members["ids"]) == set(self.model)
        assert set(members["ids"].values()) <= {0.0}
        assert set(members["created"]) == set(self.model)
        ended = {task_id for task_id, task in self.model.items() if task.state in TERMINAL}
        assert set(members["finished"]) == ended
        for task_id in ended:
            finished_at = found[self.keys.task(task_id)]["finished_at"]
            at = datetime.fromisoformat(finished_at.replace("Z", "+00:00"))
            # NOW and NOW_MS are read from the clock one after the other: a moment apart
            assert abs(members["finished"][task_id] - at.timestamp() * 1000) < 1000, task_id
            assert members["finished"][task_id] >= members["created"][task_id], task_id

    def _records_agree(self, found: dict[str, Any]) -> None:
        """Each record says what the model says; its lease is held by its running attempt
        only; a deleted task has no record and no lease."""
        keys = self.keys
        for task_id, task in self.model.items():
            record = found[keys.task(task_id)]
            assert record["state"] == task.state, task_id
            assert int(record["attempts"]) == task.attempts, task_id
            assert int(record["turn"]) == task.turn, task_id
            assert int(record["version"]) == task.version, task_id
            assert int(record["priority"]) == task.priority, task_id
            assert json.loads(record["params"]) == task.params, task_id
            assert (record.get("runner") or None) == task.runner, task_id
            progress = record.get("progress")
            assert (json.loads(progress) if progress else None) == task.progress, task_id
            assert bool(record.get("cancel_requested")) == task.cancel_requested, task_id
            entry = record.get("ledger_entry") or None
            assert entry == (None if task.entry is None else ":".join(map(str, task.entry[1:])))
            holds = task.state == State.STARTED and task.lease
            lease = f"{task.attempts} {task.runner}" if holds else None
            assert found[keys.lease(task_id)] == lease, task_id
            assert (found[keys.pages(task_id)] or 0) == task.pages, task_id
            meta = found[keys.meta(task_id)]
            assert (json.loads(meta)["status"] if meta else None) == task.meta, task_id
            errors = json.loads(record.get("errors") or "[]")
            kept = [(e["type"], e["message"], e["attempt"]) for e in errors]
            assert kept == task.errors[-ERRORS_KEPT:], task_id
            # One failure per attempt at most, oldest first, none of an attempt yet to come.
            attempts = [e["attempt"] for e in errors]
            assert attempts == sorted(set(attempts)) and all(a <= task.attempts for a in attempts)
            links = [record.get(f) or None for f in ("retry_of", "retried_by", "clone_of")]
            assert links == [task.retry_of, task.retried_by, task.clone_of], task_id
        for task_id in self.gone:
            assert found[keys.task(task_id)] is found[keys.lease(task_id)] is None, task_id
            assert found[keys.meta(task_id)] is None, task_id

    def _line_postponed_outbox_agree(self, found: dict[str, Any]) -> None:
        for line, keys in self.lines.items():
            model = {task_id: task for task_id, task in self.model.items() if task.line == line}
            # The line holds exactly its QUEUED tasks, in the order they will run.
            assert [member for member, _ in found[keys.line] or []] == self._line(line)
            assert dict(found[keys.scheduled] or []) == {
                task_id: task.due_ms
                for task_id, task in model.items()
                if task.state == State.SCHEDULED
            }
            outbox = {member for member, _ in found[keys.outbox] or []}
            assert all(task_id in model for task_id in outbox)
            assert all(model[task_id].state == State.QUEUED for task_id in outbox)
            assert outbox == {task_id for task_id, task in model.items() if task.outbox}
            assert dict(found[keys.cancelling] or []) == {
                task_id: task.stop_ms
                for task_id, task in model.items()
                if task.state == State.STARTED and task.cancel_requested
            }
            # Finished tasks, and only they, wait there to be forgotten.
            expiry = {member for member, _ in found[keys.expiry] or []}
            assert {task_id for task_id, task in model.items() if task.forget} == expiry
            assert all(model[task_id].state in TERMINAL for task_id in expiry)

    def _retries_linked_both_ways(self, found: dict[str, Any]) -> None:
        """While a task and its retry are both there, each names the other (`retried_by`,
        `retry_of`), and no other task there names the task as the one it retries: at most
        one live retry per task, and only of a task that ended FAILURE or CANCELLED."""
        records = {task_id: found[self.keys.task(task_id)] for task_id in self.model}
        live: dict[str, list[str]] = {task_id: [] for task_id in records}
        for task_id, record in records.items():
            if record.get("retry_of") in live:
                live[record["retry_of"]].append(task_id)
        for task_id, record in records.items():
            by = record.get("retried_by")
            assert live[task_id] == ([by] if by in records else []), task_id
            assert not by or record["state"] in RETRIABLE, task_id

    def _changes_name_their_lines(self, found: dict[str, Any]) -> None:
        """Every change on the stream of changes names the line of its task, so that the
        watchers of that line are told it (GET /events?line=), and those of no other."""
        told = found[self.keys.line_events] or []
        for _, change in told:
            task = self.model.get(change["id"]) or self.gone[change["id"]]
            assert change.get("line") == task.line, change
        if told:
            self.told = told[-1][0]

    def _webhooks_follow_their_tasks(self, found: dict[str, Any]) -> None:
        """Every ended task a URL may hear of is in the webhook outbox until the deliverer
        plans it (no other is ever there), then has
        one delivery per URL that hears of its end (its callback_url, the global hooks of its
        state), indexed by task too; no task that has not ended, nor one deleted, is in
        either: no delivery outlives its task."""
        keys = self.keys
        outbox = {member for member, _ in found[keys.webhooks] or []}
        assert outbox == set(self._unplanned())
        hooks = hooks_of(HOOKS)
        expected = {
            (task_id, url, 1)
            for task_id, task in self.model.items()
            if task.planned
            for url in targets(task.state, task.callback_url or None, hooks)
        }
        deliveries = [Delivery.parse(member) for member, _ in found[keys.webhook_deliveries] or []]
        assert {(d.task_id, d.url, d.attempt) for d in deliveries} == expected
        assert len(deliveries) == len(expected)
        indexed = {member for member, _ in found[keys.webhook_deliveries_by_task] or []}
        assert indexed == {d.indexed for d in deliveries}

    def _ends_counted_once(self, found: dict[str, Any]) -> None:
        """The ended-task figures hold, per type and outcome, the ends the model recorded,
        and per histogram and bucket the times their finishes gave, with their sums: each
        end counted once, by the script that recorded it."""
        raw = found[task_metrics.key(self.keys.prefix)] or {}
        counts = {name: int(value) for name, value in raw.items() if "_sum|" not in name}
        assert counts == dict(self.figures)
        sums = {name: float(value) for name, value in raw.items() if "_sum|" in name}
        assert sums == pytest.approx(self.sums)
        ends = {
            tuple(name.split("|")[1:]): n for name, n in self.figures.items() if "ended|" in name
        }
        assert task_metrics.parse(raw).ends == ends  # as /metrics reads them

    def _no_serial_issued_twice(self, found: dict[str, Any]) -> None:
        """Reserved ranges never overlap, the ledger holds what the model says, and a range
        whose task ran is never given back, even once the task is forgotten."""
        reserved: set[Entry] = set()
        for model in LEDGERS:
            entries = found[self.keys.ledger(model)] or []
            ranges = [Allocation.parse(entry) for entry, _ in entries]
            assert [score for _, score in entries] == [r.first for r in ranges]
            for before, after in zip(ranges, ranges[1:], strict=False):
                assert before.last < after.first, (model, before, after)
            reserved |= {(model, r.first, r.last, r.task_id) for r in ranges}
        assert reserved == self.ledger
        assert self.used <= reserved


class QuorumRecordMachine(RecordMachine):
    """The same, with turns of a quorum queue."""

    quorum = True
    hearing = ENDED  # the default: every end waits in the outbox

    @rule(line=st.sampled_from([line.name for line in LINES]))
    def head(self, line: str) -> None:
        """The task the next turn of a line runs: a started one of that line first, then the
        line's head; none when no task of the line started or waits."""
        found = self.on[line].head()
        expected = self._head(line)
        assert (found and found.task_id) == expected


TestRecordMachine = RecordMachine.TestCase
TestQuorumRecordMachine = QuorumRecordMachine.TestCase
TestRecordMachine.settings = TestQuorumRecordMachine.settings = settings(
    max_examples=60,
    stateful_step_count=40,
    deadline=None,
    database=None,  # nothing written into the working tree
    report_multiple_bugs=False,  # shrink one failure, within the per-test timeout
)
