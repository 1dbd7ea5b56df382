"""Stored bytes on the real Redis: the per-task limit and the owner's quota, kept by the same
scripts that create, edit, finish and forget tasks, so the count never drifts."""

import json

import pytest
import redis

from taskline.core.records import Keys, State, dumps
from taskline.core.transitions import (
    Claimed,
    Created,
    Deleted,
    Edited,
    OverQuota,
    TooLarge,
    Transitions,
)

pytestmark = pytest.mark.integration

FOREVER = 2**42
TASK_LIMIT = 1000
QUOTA = 2500


def params(size: int) -> dict[str, str]:
    """Params taking exactly `size` bytes as stored (the text is UTF-8: é is 2 bytes)."""
    text = "é" * ((size - len(dumps({"text": ""}))) // 2)
    found = {"text": text + "x" * (size - len(dumps({"text": text}).encode()))}
    assert len(dumps(found).encode()) == size
    return found


def create(transitions: Transitions, task_id: str, size: int, owner: str = "alice") -> object:
    return transitions.create(
        task_id,
        "reverse",
        params(size),
        5,
        owner,
        None,
        100,
        None,
        1000,
        None,
        max_task_bytes=TASK_LIMIT,
        max_user_bytes=QUOTA,
    )


def used(client: redis.Redis, keys: Keys, owner: str = "alice") -> int:
    return int(client.get(keys.usage(owner)) or 0)


def test_params_over_the_task_limit_or_the_quota_are_refused_and_nothing_is_written(
    client: redis.Redis, keys: Keys, transitions: Transitions
) -> None:
    assert create(transitions, "too-big", TASK_LIMIT + 1) == TooLarge(TASK_LIMIT + 1, TASK_LIMIT)
    assert isinstance(create(transitions, "a", 1000), Created)
    assert isinstance(create(transitions, "b", 1000), Created)
    assert used(client, keys) == 2000
    before = set(client.scan_iter(f"{keys.prefix}*"))
    assert create(transitions, "c", 501) == OverQuota(2000, QUOTA)
    assert set(client.scan_iter(f"{keys.prefix}*")) == before  # no record, index, rate
    assert used(client, keys) == 2000
    assert isinstance(create(transitions, "d", 300, owner="bob"), Created)  # bob's own
    assert isinstance(create(transitions, "c", 500), Created)  # exactly the quota
    assert used(client, keys) == QUOTA


def test_edits_results_and_deletes_keep_the_count_of_what_is_kept(
    client: redis.Redis, keys: Keys, transitions: Transitions
) -> None:
    assert isinstance(create(transitions, "a", 400), Created)
    assert isinstance(create(transitions, "b", 400), Created)

    def edit(task_id: str, size: int) -> object:
        return transitions.edit(
            task_id,
            None,
            params(size),
            None,
            "keep",
            None,
            {"change": "edited"},
            None,
            max_task_bytes=TASK_LIMIT,
            max_user_bytes=QUOTA,
        )

    assert edit("a", TASK_LIMIT + 1) == TooLarge(TASK_LIMIT + 1, TASK_LIMIT)
    assert isinstance(edit("a", 900), Edited)
    assert used(client, keys) == 1300
    assert isinstance(create(transitions, "c", 1000), Created)
    assert edit("b", 1000) == OverQuota(2300, QUOTA)  # 400 more than the quota allows
    assert used(client, keys) == 2300
    assert isinstance(edit("b", 100), Edited)  # shrinking is always allowed
    assert used(client, keys) == 2000

    claimed = transitions.claim(
        "b", "1", False, "reverse", {}, "w:1", 10_000, False, forget_ms=FOREVER
    )
    assert isinstance(claimed, Claimed) and claimed.params_bytes == 100
    assert transitions.finish("b", State.SUCCESS, None, FOREVER, token=claimed.token, stored=250)
    assert used(client, keys) == 2250
    assert client.hget(keys.task("b"), "bytes") == "350"

    for task_id in ("a", "b", "c"):
        assert isinstance(transitions.delete(task_id), Deleted)
    assert used(client, keys) == 0
    assert not client.exists(keys.usage("alice"))  # nothing left behind at zero


def test_a_large_progress_is_kept_whole_on_the_record_and_cut_in_the_events(
    client: redis.Redis, keys: Keys, transitions: Transitions
) -> None:
    """Thousands of progress events are kept per task and per line: each carries a preview."""
    assert isinstance(create(transitions, "a", 100), Created)
    claimed = transitions.claim("a", "1", False, "reverse", {}, "w:1", 10_000, False, forget_ms=1)
    assert isinstance(claimed, Claimed)
    estimate = "3." + "1" * 10_000
    progress = {"percent": 50.0, "current": 1, "total": 2, "intermediate": estimate}
    assert transitions.progress("a", claimed.token, progress, event_bytes=1000)
    assert client.hget(keys.task("a"), "progress") == dumps(progress)
    for stream in (keys.events("a"), keys.line_events):
        _, fields = client.xrevrange(stream, count=1)[0]
        shown = json.loads(fields["progress"])
        assert fields["truncated"] == "1" and len(fields["progress"].encode()) <= 1000
        assert shown["percent"] == 50.0 and estimate.startswith(shown["intermediate"])
    small = {"percent": 60.0, "current": 1, "total": 2, "intermediate": "3.14"}
    assert transitions.progress("a", claimed.token, small, event_bytes=1000)
    _, fields = client.xrevrange(keys.events("a"), count=1)[0]
    assert json.loads(fields["progress"]) == small and "truncated" not in fields
