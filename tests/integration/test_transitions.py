"""The transition scripts on the real Redis: fenced runs, per-turn outbox, the serial ledger.

Each test plays the part of the API, the worker or the scheduler by calling the typed methods
of core.transitions, as they do, under this test's own key prefix.
"""

import json

import pytest
import redis

from taskline.core import task_metrics
from taskline.core.ledger import Allocation
from taskline.core.lines import Line
from taskline.core.records import Keys, State, now_ms
from taskline.core.transitions import (
    Cancelled,
    Cancelling,
    Claimed,
    Created,
    Deleted,
    Edited,
    Held,
    Kept,
    Limited,
    Overlap,
    PassedOn,
    Recovered,
    Requeued,
    Reservation,
    ResultMeta,
    ResultWrites,
    Retrying,
    Skipped,
    Stale,
    Transitions,
)

pytestmark = pytest.mark.integration

LEASE_MS = 10_000
FOREVER = 2**42
# The failures of retried attempts a record keeps, as TASKLINE_RETRY_ERRORS_KEPT's default.
KEPT = 10


def create(transitions: Transitions, task_id: str, **extra: object) -> Created:
    args = {
        "name": "reverse",
        "params": {"text": "abc"},
        "priority": 5,
        "owner": "alice",
        "not_before": None,
        "max_waiting": 100,
        "idempotency": None,
        "per_minute": 1000,
        "reserve": None,
    }
    created = transitions.create(task_id, **{**args, **extra})
    assert isinstance(created, Created), created
    return created


def claim(
    transitions: Transitions,
    task_id: str,
    turn: int,
    runner: str,
    redelivered: bool = False,
    name: str = "reverse",
) -> Claimed | Held | Skipped:
    return transitions.claim(
        task_id, str(turn), redelivered, name, {}, runner, LEASE_MS, False, forget_ms=FOREVER
    )


def test_a_run_whose_lease_lapsed_cannot_write_over_its_successor(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    created = create(transitions, "t1")
    first = claim(transitions, "t1", created.turn, "w1:100")
    assert isinstance(first, Claimed) and first.token == 1
    # While the first run holds its lease, a redelivery is held back.
    assert isinstance(claim(transitions, "t1", created.turn, "w2:200", True), Held)

    client.delete(keys.lease("t1"))  # the first run's host stalled past its lease
    second = claim(transitions, "t1", created.turn, "w2:200", redelivered=True)
    assert isinstance(second, Claimed) and second.token == 2
    lease = client.get(keys.lease("t1"))

    # The stalled run wakes up: each of its writes is refused and changes nothing.
    assert transitions.progress("t1", first.token, {"percent": 99}) is False
    assert transitions.page("t1", first.token, ["stale"]) is False
    assert transitions.renew("t1", first.token, "w1:100", LEASE_MS) is False
    assert transitions.finish("t1", State.SUCCESS, None, FOREVER, token=first.token) is False
    assert transitions.finish("t1", State.FAILURE, None, FOREVER, runner="w1:100") is False
    record = client.hgetall(keys.task("t1"))
    assert record["state"] == "STARTED" and record["progress"] == ""
    assert record["runner"] == "w2:200" and record["attempts"] == "2"
    assert client.get(keys.lease("t1")) == lease  # the successor's lease is untouched
    assert client.llen(keys.pages("t1")) == 0

    # The successor's own writes go through.
    assert transitions.progress("t1", second.token, {"percent": 50}) is True
    assert transitions.page("t1", second.token, ["fresh"]) is True
    assert transitions.renew("t1", second.token, "w2:200", LEASE_MS) is True
    assert transitions.finish("t1", State.SUCCESS, None, FOREVER, token=second.token) is True
    assert client.hget(keys.task("t1"), "state") == "SUCCESS"
    assert not client.exists(keys.lease("t1"))


def test_a_confirm_takes_off_the_outbox_only_the_turn_it_confirms(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    created = create(transitions, "t1")
    assert created.turn == 1 and client.zscore(keys.outbox, "t1") is not None
    edited = transitions.edit("t1", None, None, 9, "keep", None, {"change": "edited"}, None)
    assert edited == Edited(turn=2)

    # The first turn's confirm arrives late: the newer turn stays until it is confirmed.
    assert transitions.confirm([("t1", 1)]) == 0
    assert client.zscore(keys.outbox, "t1") is not None
    assert transitions.confirm([("t1", 2)]) == 1
    assert client.zscore(keys.outbox, "t1") is None


def test_an_edit_swaps_the_serial_reservation_or_is_refused(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    serials = {"name": "generate_serials", "params": {"code_model": "AB", "count": 5}}
    issued = create(transitions, "done", **serials, reserve=("AB", 1, 5))
    run = claim(transitions, "done", issued.turn, "w1:1", name="generate_serials")
    transitions.finish("done", State.SUCCESS, None, FOREVER, token=run.token)
    create(transitions, "later", **serials, reserve=("AB", 100, 104), not_before=("x", FOREVER))

    change = {"change": "edited"}
    refused = transitions.edit("later", None, {"n": 1}, None, "clear", None, change, ("AB", 1, 5))
    assert refused == Overlap(1, 5, "done")
    record = client.hgetall(keys.task("later"))
    assert record["state"] == "SCHEDULED" and record["params"] != '{"n":1}'
    ledger = client.zrange(keys.ledger("AB"), 0, -1)
    assert ledger == ["1:5:done", "100:104:later"]

    moved = transitions.edit(
        "later", None, {"n": 200}, None, "keep", None, change, ("AB", 200, 204)
    )
    assert moved == Edited(turn=0)
    assert client.zrange(keys.ledger("AB"), 0, -1) == ["1:5:done", "200:204:later"]
    # The range given up is free again.
    create(transitions, "again", **serials, reserve=("AB", 100, 104))


def test_a_range_is_given_back_only_by_a_task_that_never_ran(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    serials = {"name": "generate_serials", "params": {}}
    waiting = create(transitions, "waiting", **serials, reserve=("M", 1, 10))
    assert transitions.cancel("waiting", FOREVER, FOREVER) == Cancelled()
    assert client.zcard(keys.ledger("M")) == 0
    create(transitions, "same", **serials, reserve=("M", 1, 10))
    assert waiting.turn == 1

    ran = create(transitions, "ran", **serials, reserve=("M", 20, 30))
    run = claim(transitions, "ran", ran.turn, "w1:1", name="generate_serials")
    transitions.finish("ran", State.FAILURE, None, FOREVER, token=run.token)
    assert transitions.delete("ran") == Deleted(State.FAILURE)
    # Serials of a run may be out: its range stays reserved after it is forgotten.
    clash = transitions.create(
        "next", "generate_serials", {}, 5, "alice", None, 100, None, 1000, ("M", 25, 26)
    )
    assert clash == Overlap(20, 30, "ran")
    assert Allocation.parse(client.zrange(keys.ledger("M"), 0, -1)[1]).task_id == "ran"


def test_a_task_put_back_in_line_by_a_lost_run_keeps_its_range(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    """Its run may have issued any serial of its range: an edit may keep the range (other
    params, or the same range again) but never move it, and no other task can take it."""
    serials = {"name": "generate_serials", "params": {}}
    ran = create(transitions, "ran", **serials, reserve=("M", 1, 10))
    claim(transitions, "ran", ran.turn, "w1:1", name="generate_serials")
    client.delete(keys.lease("ran"))
    requeued = transitions.recover("ran", False, FOREVER, 0)
    assert isinstance(requeued, Requeued)

    def edit(serials: Reservation) -> object:
        params = {"code_model": serials[0], "number": serials[1]}
        return transitions.edit("ran", None, params, None, "keep", None, {}, serials)

    assert edit(("M", 500, 510)) == Kept(1)
    assert edit(("N", 1, 10)) == Kept(1)
    assert edit(("M", 1, 10)) == Edited(0)
    assert client.zrange(keys.ledger("M"), 0, -1) == ["1:10:ran"]
    assert client.zcard(keys.ledger("N")) == 0
    clash = transitions.create(
        "next", "generate_serials", {}, 5, "alice", None, 100, None, 1000, ("M", 1, 10)
    )
    assert clash == Overlap(1, 10, "ran")


def test_a_task_adopted_from_a_turnless_message_can_be_put_back_in_line(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    """Its turn is 0, a number like any other: a lost run puts it back in line whole, with
    turn 1 to publish (an empty turn once broke the script halfway, leaving it QUEUED and
    out of line)."""
    outcome = transitions.claim(
        "stray", None, False, "reverse", {"text": "x"}, "w:1", LEASE_MS, False, forget_ms=FOREVER
    )
    assert isinstance(outcome, Claimed)
    client.delete(keys.lease("stray"))
    assert transitions.recover("stray", False, FOREVER, 0) == Requeued(1)
    assert client.zrange(keys.line, 0, -1) == ["stray"]
    assert client.hget(keys.task("stray"), "state") == "QUEUED"
    # Only the new turn runs it now; the turnless message of old is superseded.
    stale = transitions.claim(
        "stray", None, True, "reverse", {"text": "x"}, "w:1", LEASE_MS, False, forget_ms=FOREVER
    )
    assert stale == Skipped("superseded")


def test_a_serial_task_sent_without_a_turn_fails_clearly(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    outcome = transitions.claim(
        "stray",
        None,
        False,
        "generate_serials",
        {"code_model": "Z"},
        "w:1",
        LEASE_MS,
        True,
        forget_ms=FOREVER,
    )
    assert outcome == Skipped("refused")
    assert client.zscore(keys.expiry, "stray") == FOREVER  # forgotten in its time
    record = client.hgetall(keys.task("stray"))
    assert record["state"] == "FAILURE"
    assert "submitted through the API" in record["error"]
    assert client.zscore(keys.index("FAILURE"), "stray") is not None
    assert client.zcard(keys.ledger("Z")) == 0


def test_a_run_asked_to_stop_that_died_is_recorded_cancelled_not_run_again(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    created = create(transitions, "t1")
    claim(transitions, "t1", created.turn, "w1:1")
    transitions.cancel("t1", now_ms() + 1000, FOREVER)
    assert client.hget(keys.task("t1"), "state") == "STARTED"  # not before its run stops
    client.delete(keys.lease("t1"))  # the run died
    assert claim(transitions, "t1", created.turn, "w1:2", True) == Skipped("cancelled")
    assert client.hget(keys.task("t1"), "state") == "CANCELLED"
    assert client.zscore(keys.expiry, "t1") == FOREVER  # forgotten in its time


def test_a_message_without_a_turn_or_of_another_type_does_not_run_a_queued_task(
    transitions: Transitions,
) -> None:
    created = create(transitions, "t1")
    stray = transitions.claim(
        "t1", None, False, "reverse", {}, "w:1", LEASE_MS, False, forget_ms=FOREVER
    )
    assert stray == Skipped("superseded")
    other = claim(transitions, "t1", created.turn, "w:1", name="leibniz_pi")
    assert other == Skipped("mismatch")
    assert isinstance(claim(transitions, "t1", created.turn, "w:1"), Claimed)


def test_edits_count_against_the_rate_and_refusals_do_not(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    serials = {"name": "generate_serials", "params": {}, "per_minute": 3}
    create(transitions, "a", **serials, reserve=("R", 1, 5))
    clash = transitions.create(
        "b", "generate_serials", {}, 5, "alice", None, 9, None, 3, ("R", 2, 3)
    )
    assert isinstance(clash, Overlap)  # refused: not counted
    create(transitions, "c", **serials, reserve=("R", 6, 9))
    assert transitions.edit(
        "a", None, None, 7, "keep", None, {}, None, editor="alice", per_minute=3
    ) == Edited(turn=2)
    limited = transitions.edit(
        "a", None, None, 8, "keep", None, {}, None, editor="alice", per_minute=3
    )
    assert isinstance(limited, Limited) and 0 < limited.retry_after <= 60
    assert isinstance(
        transitions.create("d", "reverse", {}, 5, "alice", None, 9, None, 3, None), Limited
    )
    assert client.hget(keys.task("a"), "priority") == "7"


def test_a_retried_run_waits_postponed_with_its_failure_until_its_next_turn(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    created = create(transitions, "t1")
    first = claim(transitions, "t1", created.turn, "w1:100")
    assert isinstance(first, Claimed) and first.token == 1
    assert transitions.progress("t1", first.token, {"percent": 40}) is True
    due = now_ms() + 60_000
    error = {"type": "FlakySourceError", "message": "the source hung up"}

    retried = transitions.retry("t1", first.token, error, due, kept=KEPT)
    assert isinstance(retried, Retrying)
    record = client.hgetall(keys.task("t1"))
    assert record["state"] == "SCHEDULED" and record["not_before"] == retried.not_before
    assert record["runner"] == record["progress"] == record["error"] == ""
    assert record["attempts"] == "1" and record["turn"] == str(created.turn)
    (failure,) = json.loads(record["errors"])
    assert failure == {**error, "attempt": 1, "at": failure["at"]}
    assert not client.exists(keys.lease("t1"))
    assert client.zscore(keys.scheduled, "t1") == due  # the scheduler releases it then
    assert client.zscore(keys.index("SCHEDULED"), "t1") is not None
    assert client.zscore(keys.index("STARTED"), "t1") is None
    assert client.zcard(keys.line) == 0  # the line goes on meanwhile
    entry = json.loads(client.lrange(keys.history("t1"), -1, -1)[0])
    assert entry == {
        "at": failure["at"],
        "change": "retry",
        "error": failure,
        "not_before": retried.not_before,
    }
    _, event = client.xrevrange(keys.events("t1"), count=1)[0]
    assert event["state"] == "SCHEDULED" and event["attempts"] == "1"
    assert json.loads(event["error"]) == failure and event["not_before"] == retried.not_before
    _, told = client.xrevrange(keys.line_events, count=1)[0]
    assert told["kind"] == "retrying" and told["id"] == "t1"

    # The failed run can write nothing more, and its message (redelivered) runs nothing.
    assert transitions.retry("t1", first.token, error, due, kept=KEPT) == Stale()
    assert transitions.progress("t1", first.token, {"percent": 50}) is False
    assert transitions.finish("t1", State.FAILURE, error, FOREVER, token=first.token) is False
    assert claim(transitions, "t1", created.turn, "w1:100", True) == Skipped("SCHEDULED")

    # Its time comes: a new turn, a new attempt; it fails again, then succeeds.
    turn = transitions.release("t1")
    assert turn == created.turn + 1
    second = claim(transitions, "t1", turn, "w1:100")
    assert isinstance(second, Claimed) and second.token == 2
    assert isinstance(
        transitions.retry("t1", 2, {"type": "E", "message": "2"}, due, kept=KEPT), Retrying
    )
    third = claim(transitions, "t1", transitions.release("t1"), "w1:100")
    assert isinstance(third, Claimed) and third.token == 3
    assert transitions.finish("t1", State.SUCCESS, None, FOREVER, token=third.token) is True
    record = client.hgetall(keys.task("t1"))
    assert record["state"] == "SUCCESS" and record["attempts"] == "3"
    assert [e["attempt"] for e in json.loads(record["errors"])] == [1, 2]
    changes = [json.loads(e)["change"] for e in client.lrange(keys.history("t1"), 0, -1)]
    assert changes == ["created", "retry", "released", "retry", "released"]


def test_a_record_keeps_its_last_failures_and_a_run_asked_to_stop_is_not_retried(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    created = create(transitions, "t1")
    turn = created.turn
    for attempt in range(1, 4):
        run = claim(transitions, "t1", turn, "w:1")
        assert isinstance(run, Claimed) and run.token == attempt
        error = {"type": "E", "message": str(attempt)}
        assert isinstance(transitions.retry("t1", attempt, error, FOREVER, kept=2), Retrying)
        turn = transitions.release("t1")
    errors = json.loads(client.hget(keys.task("t1"), "errors") or "")
    assert [(e["message"], e["attempt"]) for e in errors] == [("2", 2), ("3", 3)]
    assert client.llen(keys.history("t1")) == 7  # every failure stays in the history

    # A cancel asked while the run goes on wins over a retry: the run ends as a failure does.
    run = claim(transitions, "t1", turn, "w:1")
    assert isinstance(run, Claimed)
    transitions.cancel("t1", now_ms() + 30_000, FOREVER)
    assert (
        transitions.retry("t1", run.token, {"type": "E", "message": "4"}, 0, kept=KEPT)
        == Cancelling()
    )
    record = client.hgetall(keys.task("t1"))
    assert record["state"] == "STARTED" and client.zscore(keys.scheduled, "t1") is None
    assert transitions.finish("t1", State.FAILURE, {"type": "E"}, FOREVER, token=run.token)


def test_a_lost_run_counts_as_an_attempt_and_goes_back_in_line_past_the_last(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    """Attempts count every claim: a run lost after its task's last allowed attempt was
    claimed still puts the task back in line (it may not have failed), and its next
    attempt's number says the policy allows no more retries."""
    created = create(transitions, "t1")
    run = claim(transitions, "t1", created.turn, "w:1")
    assert isinstance(
        transitions.retry("t1", 1, {"type": "E", "message": "1"}, 0, kept=KEPT), Retrying
    )
    run = claim(transitions, "t1", transitions.release("t1"), "w:1")
    assert isinstance(run, Claimed) and run.token == 2
    client.delete(keys.lease("t1"))  # its worker died
    requeued = transitions.recover("t1", False, FOREVER, 0)
    assert isinstance(requeued, Requeued)
    run = claim(transitions, "t1", requeued.turn, "w:2")
    assert isinstance(run, Claimed) and run.token == 3
    assert client.hget(keys.task("t1"), "attempts") == "3"


def test_a_run_stores_celerys_started_and_success_with_its_claim_and_finish(
    transitions: Transitions, client: redis.Redis, keys: Keys
) -> None:
    """Celery's STARTED goes with the claim and its SUCCESS with the finish: stored and
    published on its key as the result backend does, only by a claim that runs the task or a
    finish of the run that holds it, and never over a SUCCESS stored before."""

    def meta(status: str, run: str) -> ResultMeta:
        return ResultMeta(json.dumps({"status": status, "result": run}), 60)

    def stored(task_id: str) -> tuple[str, str] | None:
        found = client.get(keys.meta(task_id))
        return None if found is None else tuple(json.loads(found).values())

    listener = client.pubsub()
    listener.subscribe(keys.meta("t1"))
    assert listener.get_message(timeout=1)["type"] == "subscribe"
    turn = create(transitions, "t1").turn
    args = ("reverse", {}, "w:1", LEASE_MS, False)
    refused = transitions.claim(
        "t1", str(turn - 1), False, *args, forget_ms=FOREVER, meta=meta("STARTED", "old")
    )
    assert refused == Skipped("superseded") and stored("t1") is None
    run = transitions.claim(
        "t1", str(turn), False, *args, forget_ms=FOREVER, meta=meta("STARTED", "1")
    )
    assert isinstance(run, Claimed) and stored("t1") == ("STARTED", "1")
    assert 0 < client.ttl(keys.meta("t1")) <= 60
    # Another attempt took the task: the first run's finish stores nothing.
    client.delete(keys.lease("t1"))
    again = transitions.claim(
        "t1", str(turn), True, *args, forget_ms=FOREVER, meta=meta("STARTED", "2")
    )
    assert isinstance(again, Claimed) and again.token == 2
    late = transitions.finish(
        "t1", State.SUCCESS, None, FOREVER, token=1, meta=meta("SUCCESS", "1")
    )
    assert late is False and stored("t1") == ("STARTED", "2")
    assert transitions.finish(
        "t1", State.SUCCESS, None, FOREVER, token=2, meta=meta("SUCCESS", "2")
    )
    assert stored("t1") == ("SUCCESS", "2")
    published = [listener.get_message(timeout=1) for _ in range(3)]
    assert [json.loads(m["data"])["result"] for m in published if m] == ["1", "2", "2"]
    listener.close()

    # A child that died after an older worker's backend stored SUCCESS (a write not folded
    # into finish): the redelivered message's claim records that SUCCESS instead of running
    # the task again, as the scheduler's recovery would, and leaves Celery's meta as it was.
    turn = create(transitions, "t2").turn
    assert isinstance(claim(transitions, "t2", turn, "w:1"), Claimed)
    assert ResultWrites(client).store(
        keys.meta("t2"), json.dumps({"status": "SUCCESS", "result": "1"}), 0
    )
    client.delete(keys.lease("t2"))
    settled = transitions.claim(
        "t2", str(turn), True, *args, forget_ms=FOREVER, meta=meta("STARTED", "2")
    )
    assert settled == Skipped("SUCCESS") and stored("t2") == ("SUCCESS", "1")
    assert client.hmget(keys.task("t2"), "state", "attempts") == ["SUCCESS", "1"]

    # Nor does a claim that runs a task, or its finish, write over a SUCCESS stored before.
    turn = create(transitions, "t3").turn
    assert ResultWrites(client).store(
        keys.meta("t3"), json.dumps({"status": "SUCCESS", "result": "0"}), 0
    )
    run = transitions.claim(
        "t3", str(turn), False, *args, forget_ms=FOREVER, meta=meta("STARTED", "1")
    )
    assert isinstance(run, Claimed) and stored("t3") == ("SUCCESS", "0")
    assert transitions.finish(
        "t3", State.SUCCESS, None, FOREVER, token=1, meta=meta("SUCCESS", "1")
    )
    assert stored("t3") == ("SUCCESS", "0")


MAIN_LINE = Line("default", "q", True, frozenset())
SIDE_LINE = Line("slow", "q.slow", False, frozenset())


@pytest.mark.parametrize("quorum", [False, True])
def test_a_message_of_another_lines_task_is_not_run_by_this_lines_worker(
    client: redis.Redis, keys: Keys, quorum: bool
) -> None:
    """A turn that reaches the queue of another line than its task's (sent there by hand, or
    a line's types changed) changes nothing: the task's own line runs it."""
    main = Transitions(client, Keys(keys.prefix, MAIN_LINE))
    side = Transitions(client, Keys(keys.prefix, SIDE_LINE))
    created = create(side, "t1")
    before = client.hgetall(keys.task("t1"))

    def claim_on(transitions: Transitions) -> object:
        return transitions.claim(
            "t1",
            str(created.turn),
            False,
            "reverse",
            {},
            "w1:100",
            LEASE_MS,
            False,
            forget_ms=FOREVER,
            quorum=quorum,
        )

    assert claim_on(main) == Skipped("line")
    assert client.hgetall(keys.task("t1")) == before
    if quorum:  # the other line has tasks waiting: the turn goes back for them
        create(main, "t2")
        assert claim_on(main) == PassedOn("line")
        assert client.hgetall(keys.task("t1")) == before
    assert isinstance(claim_on(side), Claimed)


def test_a_record_made_before_lines_is_the_main_lines_to_claim(
    client: redis.Redis, keys: Keys
) -> None:
    created = create(Transitions(client, keys), "t1")  # no line: as before lines
    assert client.hget(keys.task("t1"), "line") == ""
    side = Transitions(client, Keys(keys.prefix, SIDE_LINE))
    assert claim(side, "t1", created.turn, "w1:100") == Skipped("line")
    main = Transitions(client, Keys(keys.prefix, MAIN_LINE))
    assert isinstance(claim(main, "t1", created.turn, "w1:100"), Claimed)


@pytest.mark.parametrize("metrics", [True, False])
def test_the_script_that_records_an_end_counts_it_with_the_runs_times(
    transitions: Transitions, client: redis.Redis, keys: Keys, metrics: bool
) -> None:
    """A finish counts its end by type and outcome, with the wait and run seconds it was
    given, each in its bucket of core.task_metrics; a stale finish, a waiting task's cancel
    and a lost run's recorded SUCCESS count theirs; with metrics off none counts."""
    figures = task_metrics.key(keys.prefix)
    ran = create(transitions, "ran")
    run = claim(transitions, "ran", ran.turn, "w1:1")
    done = transitions.finish(
        "ran", State.SUCCESS, None, FOREVER, token=run.token, waited=0.02, ran=7.5, metrics=metrics
    )
    assert done is True
    stale = transitions.finish("ran", State.FAILURE, None, FOREVER, token=run.token)
    assert stale is False
    create(transitions, "waiting")
    assert transitions.cancel("waiting", FOREVER, FOREVER, metrics=metrics) == Cancelled()
    lost = create(transitions, "lost")
    claim(transitions, "lost", lost.turn, "w1:2")
    client.set(keys.meta("lost"), json.dumps({"status": "SUCCESS"}))
    client.delete(keys.lease("lost"))
    assert transitions.recover("lost", False, FOREVER, 0, metrics=metrics) == Recovered(
        State.SUCCESS
    )
    if not metrics:
        assert client.exists(figures) == 0
        return
    found = task_metrics.parse(client.hgetall(figures))
    assert found.ends == {("reverse", "SUCCESS"): 2, ("reverse", "CANCELLED"): 1}
    waits, runs = found.waits["reverse"], found.runs["reverse"]
    assert waits.counts[task_metrics.bucket(0.02)] == sum(waits.counts) == 1
    assert runs.counts[task_metrics.bucket(7.5)] == sum(runs.counts) == 1
    assert (waits.total, runs.total) == (pytest.approx(0.02), 7.5)
