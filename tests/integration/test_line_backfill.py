"""Records made before lines join the main line's index families at start, so a listing of
the main line (GET /tasks?line=) finds them, and every later change keeps them there."""

from typing import Any

import pytest
import redis

from taskline.core import line_backfill
from taskline.core.line_backfill import BATCH, adopt_at_start, adopt_records_made_before_lines
from taskline.core.lines import Line, Lines
from taskline.core.records import Keys, State
from taskline.core.transitions import Claimed, Transitions
from tests.integration.test_transitions import FOREVER, LEASE_MS, create
from tests.processes import isolated_env, settings_of
from tests.support import REDIS_URL, counting_client, round_trips

pytestmark = pytest.mark.integration

MAIN = Line("default", "q", True, frozenset())
SIDE = Line("slow", "q.slow", False, frozenset())
LINES = Lines([MAIN, SIDE])


def members(client: redis.Redis, key: str) -> list[str]:
    return list(client.zrange(key, 0, -1))


def test_records_made_before_lines_join_the_main_line_once(client: redis.Redis, keys: Keys) -> None:
    before_lines = Transitions(client, keys)
    old = [create(before_lines, f"old{i}", owner="alice") for i in range(3)]
    assert old[0].turn and members(client, keys.index(line="default")) == []
    create(Transitions(client, Keys(keys.prefix, SIDE)), "new-side", owner="alice")
    create(Transitions(client, Keys(keys.prefix, MAIN)), "new-main", owner="bob")
    record = client.hgetall(keys.task("old0"))

    assert adopt_records_made_before_lines(client, keys.prefix, LINES) == 3
    main_all = ["old0", "old1", "old2", "new-main"]
    assert members(client, keys.index(line="default")) == main_all
    queued = keys.index(State.QUEUED.value, line="default")
    assert members(client, queued) == main_all
    assert members(client, keys.index(owner="alice", line="default")) == ["old0", "old1", "old2"]
    assert members(client, keys.index(line="slow")) == ["new-side"]
    adopted = client.hgetall(keys.task("old0"))
    assert adopted["line"] == "default"
    assert {k: v for k, v in adopted.items() if k not in ("line", "families")} == {
        k: v for k, v in record.items() if k not in ("line", "families")
    }
    # Once is enough: a second start finds nothing to do and changes nothing.
    assert adopt_records_made_before_lines(client, keys.prefix, LINES) == 0
    assert client.hgetall(keys.task("old0")) == adopted

    # A later change moves the adopted record in the main line's families too.
    main = Transitions(client, Keys(keys.prefix, MAIN))
    claimed = main.claim(
        "old0", str(old[0].turn), False, "reverse", {}, "w1:1", LEASE_MS, False, forget_ms=FOREVER
    )
    assert isinstance(claimed, Claimed)
    assert members(client, keys.index(State.STARTED.value, line="default")) == ["old0"]
    assert "old0" not in members(client, queued)


class ForgetsOneAfterTheFirstPage(redis.Redis):
    """The real Redis, with a task forgotten (out of the index of all tasks) right after the
    backfill read its first page: what the scheduler may do meanwhile."""

    forgotten: tuple[str, str] | None = None

    def zrangebyscore(self, *args: Any, **kwargs: Any) -> Any:
        return self._then_forget(super().zrangebyscore(*args, **kwargs))

    def zrange(self, *args: Any, **kwargs: Any) -> Any:
        return self._then_forget(super().zrange(*args, **kwargs))

    def _then_forget(self, page: Any) -> Any:
        if self.forgotten is not None:
            index, task_id = self.forgotten
            self.zrem(index, task_id)
            self.forgotten = None
        return page


def test_a_task_forgotten_during_the_backfill_makes_it_skip_no_other(
    keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = ForgetsOneAfterTheFirstPage.from_url(REDIS_URL, decode_responses=True)
    before_lines = Transitions(client, keys)
    for i in range(5):
        create(before_lines, f"old{i}", owner="alice")
    monkeypatch.setattr(line_backfill, "BATCH", 2)
    client.forgotten = (keys.index(), "old0")  # after the page old0, old1
    try:
        assert adopt_records_made_before_lines(client, keys.prefix, LINES) == 5
        lined = [client.hget(keys.task(f"old{i}"), "line") for i in range(5)]
        assert lined == ["default"] * 5  # old2 too, which pages by rank would skip
    finally:
        client.close()


def test_a_process_start_adopts_them_on_its_own_redis(
    client: redis.Redis, keys: Keys, capsys: pytest.CaptureFixture[str]
) -> None:
    """As the API, the worker and the scheduler call it: on the deployment's settings."""
    create(Transitions(client, keys), "old0")
    settings = settings_of(isolated_env()).model_copy(update={"key_prefix": keys.prefix})
    adopt_at_start(settings, "API")
    assert client.hget(keys.task("old0"), "line") == "default"
    assert members(client, keys.index(line="default")) == ["old0"]
    assert "1 records made before lines joined the main line" in capsys.readouterr().err


def test_a_start_counts_the_records_and_reads_none_when_each_is_on_a_line(keys: Keys) -> None:
    """Every process does it at start: its cost does not grow with the records kept."""
    with counting_client() as client:
        for i in range(BATCH + 1):
            line = (MAIN, SIDE)[i % 2]
            create(Transitions(client, Keys(keys.prefix, line)), f"t{i}", max_waiting=10**6)
        before = round_trips(client)
        assert adopt_records_made_before_lines(client, keys.prefix, LINES) == 0
        assert round_trips(client) - before == 1

        # One made before lines: the counts differ, and it is found.
        create(Transitions(client, keys), "old", max_waiting=10**6)
        assert adopt_records_made_before_lines(client, keys.prefix, LINES) == 1
        assert client.hget(keys.task("old"), "line") == "default"
