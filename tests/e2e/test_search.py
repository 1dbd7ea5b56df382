"""Searching the listing: several states, several names, an owner, creation and end time
ranges, an id prefix; each through the indexes."""

from collections.abc import Callable
from datetime import UTC, datetime

import httpx
import pytest

from taskline.core.records import Keys, now_ms
from taskline.core.transitions import Transitions
from tests.client import submit
from tests.processes import Stack

pytestmark = pytest.mark.e2e

NAMES = ("reverse", "leibniz_pi", "generate_serials")
OWNERS = ("alice", "bob")


def store_tasks(stack: Stack, count: int) -> list[tuple[str, str, str, str]]:
    """Write `count` records straight into Redis, oldest first: (id, name, owner, state),
    every fifth cancelled."""
    transitions = Transitions(stack.redis, Keys(stack.settings.key_prefix))
    made = []
    with stack.redis.pipeline(transaction=False) as pipe:
        calls = transitions.calls
        for i in range(count):
            task_id, name, owner = f"task-{i:04d}", NAMES[i % 3], OWNERS[i % 2]
            create = calls.create(
                task_id, name, {"text": "x"}, 5, owner, None, count, None, count, None
            )
            transitions.queue(pipe, create)
            state = "QUEUED"
            if i % 5 == 0:
                transitions.queue(pipe, calls.cancel(task_id, 0, now_ms() + 3_600_000))
                state = "CANCELLED"
            made.append((task_id, name, owner, state))
        pipe.execute()
    return made


def pages(api: httpx.Client, limit: int = 7, **params: object) -> list[str]:
    """Every page of a search, in order."""
    seen: list[str] = []
    cursor = None
    while True:
        query = {**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        reply = api.get("/tasks", params=query)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        seen += [t["id"] for t in body["items"]]
        cursor = body["next_cursor"]
        if cursor is None:
            return seen


def expected(made: list[tuple[str, str, str, str]], **match: set[str]) -> list[str]:
    """The ids of the stored tasks whose fields are among those given, newest first."""
    fields = ("id", "name", "owner", "state")
    return [
        row[0]
        for row in reversed(made)
        if all(row[fields.index(f)] in allowed for f, allowed in match.items())
    ]


def test_several_states_names_and_an_owner(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start("api")
    made = store_tasks(stack, 120)
    with stack.client() as admin, stack.client("alice") as alice, stack.client("carol") as carol:
        both = {"CANCELLED", "QUEUED"}
        assert pages(admin, state=sorted(both)) == expected(made, state=both)
        assert pages(admin, state=["CANCELLED", "FAILURE"]) == expected(made, state={"CANCELLED"})
        two = {"reverse", "generate_serials"}
        assert pages(admin, name=sorted(two)) == expected(made, name=two)
        assert pages(admin, name=sorted(two), state=["CANCELLED"], limit=3) == expected(
            made, name=two, state={"CANCELLED"}
        )
        assert pages(admin, owner="bob") == expected(made, owner={"bob"})
        assert pages(admin, owner="bob", name=["reverse"], state=["QUEUED"]) == expected(
            made, owner={"bob"}, name={"reverse"}, state={"QUEUED"}
        )
        # a viewer reads every task, so may ask for anyone's
        assert pages(carol, owner="alice", state=["CANCELLED"]) == expected(
            made, owner={"alice"}, state={"CANCELLED"}
        )
        # a user sees their own only, whatever names and states they ask
        assert pages(alice, name=sorted(two)) == expected(made, name=two, owner={"alice"})
        assert pages(alice, owner="alice") == expected(made, owner={"alice"})
        refused = alice.get("/tasks", params={"owner": "bob"})
        assert refused.status_code == 403
        assert "owner" in refused.json()["detail"]


def test_bad_searches_are_refused_with_a_detail(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(TASKLINE_SEARCH_MOST_NAMES="2")
    stack.start("api")
    with stack.client() as admin:
        for query in (
            {"state": ["QUEUED", "NOPE"]},
            {"name": ["a", "b", "c"]},
            {"name": ["bad name"]},
            {"owner": "no:colons"},
            {"name": "reverse", "line": "main"},
            {"created_after": "yesterday"},
            {"finished_before": "2026-13-01T00:00:00Z"},
            {"id_prefix": "no spaces"},
        ):
            reply = admin.get("/tasks", params=query)
            assert reply.status_code == 422, query
            assert reply.json()["detail"], query


def test_pages_have_no_gaps_or_repeats_while_tasks_are_created(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.start("api")
    made = store_tasks(stack, 60)
    with stack.client("alice") as alice, stack.client() as admin:
        seen: list[str] = []
        cursor = None
        query = {"state": ["QUEUED", "CANCELLED"], "name": ["reverse", "leibniz_pi"]}
        while True:
            body = admin.get(
                "/tasks", params={**query, "limit": 4, **({"cursor": cursor} if cursor else {})}
            ).json()
            submit(alice, "reverse", {"text": "new"})  # newer than any next page: in none
            seen += [t["id"] for t in body["items"]]
            cursor = body["next_cursor"]
            if cursor is None:
                break
        assert seen == expected(made, name={"reverse", "leibniz_pi"})


def test_a_deleted_task_leaves_no_index_entry(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start("api")
    made = store_tasks(stack, 10)
    cancelled = [row[0] for row in made if row[3] == "CANCELLED"]
    with stack.client() as admin:
        assert admin.delete(f"/tasks/{cancelled[0]}").status_code in (200, 204)
        indexes = list(stack.redis.scan_iter(match=stack.key("index:*")))
        assert indexes
        assert all(stack.redis.zscore(key, cancelled[0]) is None for key in indexes)
        assert cancelled[0] not in pages(admin, state=["CANCELLED", "QUEUED"], owner="alice")
        assert cancelled[1] in pages(admin, state=["CANCELLED", "QUEUED"])


def test_time_ranges_and_id_prefixes(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(TASKLINE_SEARCH_MOST_EXAMINED="12")
    stack.start("api")
    made = store_tasks(stack, 120)
    # one process wrote them: creation times never go back as the sequence goes on
    created = dict(stack.redis.zrange(stack.key("index:created"), 0, -1, withscores=True))
    ended = dict(stack.redis.zrange(stack.key("index:finished"), 0, -1, withscores=True))
    assert set(created) == {row[0] for row in made}
    assert set(ended) == {row[0] for row in made if row[3] == "CANCELLED"}
    newest_first = [row[0] for row in reversed(made)]
    at = created["task-0040"]
    until = created["task-0090"]
    iso = datetime.fromtimestamp(at / 1000, UTC).isoformat(timespec="milliseconds")
    with stack.client() as admin, stack.client("bob") as bob:
        after = [t for t in newest_first if created[t] >= at]
        assert pages(admin, created_after=iso.replace("+00:00", "Z")) == after
        assert pages(admin, created_after=f"{at / 1000:.3f}") == after
        between = [t for t in after if created[t] < until]
        assert pages(admin, created_after=iso, created_before=str(until / 1000)) == between
        assert pages(admin, created_before="0") == []
        # bob's cancelled tasks created in the range
        assert pages(bob, created_after=iso, state=["CANCELLED"]) == [
            t for t in after if t in ended and int(t[-4:]) % 2
        ]
        # an end time range: checked on at most 12 tasks a call, pages may come short
        since = sorted(ended.values())[len(ended) // 2]
        finished = [t for t in newest_first if t in ended and ended[t] >= since]
        assert pages(admin, finished_after=str(since / 1000)) == finished
        assert pages(admin, finished_after=str(since / 1000), limit=2) == finished
        short = admin.get("/tasks", params={"finished_after": "9999999999"}).json()
        assert short["items"] == [] and short["next_cursor"] is not None
        # id prefixes, alone and with the other filters
        assert pages(admin, id_prefix="task-001", limit=3) == [
            f"task-{i:04d}" for i in range(19, 9, -1)
        ]
        assert pages(admin, id_prefix="task-001", state=["CANCELLED"]) == ["task-0015", "task-0010"]
        assert pages(bob, id_prefix="task-001") == [f"task-{i:04d}" for i in (19, 17, 15, 13, 11)]
        assert pages(admin, id_prefix="task-0015", finished_after=str(since / 1000)) == [
            t for t in ["task-0015"] if t in finished
        ]
        assert pages(admin, id_prefix="nothing") == []
        broad = admin.get("/tasks", params={"id_prefix": "task-0"})
        assert broad.status_code == 422 and "longer prefix" in str(broad.json()["detail"])


def test_searchable_params_by_value(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(TASKLINE_SEARCH_VALUE_BYTES="20")
    stack.start("api")
    with stack.client("alice") as alice, stack.client("bob") as bob, stack.client() as admin:
        hello = [submit(alice, "reverse", {"text": "hello"})["id"] for _ in range(3)]
        other = submit(alice, "reverse", {"text": "hello!"})["id"]
        bobs = submit(bob, "reverse", {"text": "hello"})["id"]
        submit(alice, "reverse", {"text": "h" * 21})  # too long to be indexed: found by none
        assert pages(alice, **{"param.text": "hello"}) == hello[::-1]
        assert pages(admin, **{"param.text": "hello"}, limit=2) == [bobs, *hello[::-1]]
        assert pages(admin, **{"param.text": "hello"}, owner="bob") == [bobs]
        assert pages(admin, **{"param.text": "hello!"}, name=["reverse"]) == [other]
        assert pages(admin, **{"param.text": "hello"}, state=["CANCELLED"]) == []
        assert pages(admin, **{"param.text": "hello"}, id_prefix=hello[0]) == [hello[0]]
        # an edit moves it to its new value's index
        assert alice.patch(f"/tasks/{hello[0]}", json={"params": {"text": "bye"}}).is_success
        assert pages(alice, **{"param.text": "bye"}) == [hello[0]]
        assert pages(alice, **{"param.text": "hello"}) == hello[:0:-1]
        assert alice.post(f"/tasks/{hello[1]}/cancel").is_success
        assert pages(alice, **{"param.text": "hello"}, state=["CANCELLED"]) == [hello[1]]
        assert alice.delete(f"/tasks/{hello[1]}").is_success
        indexes = list(stack.redis.scan_iter(match=stack.key("index:*")))
        assert any(":param:" in key for key in indexes)
        assert all(stack.redis.zscore(key, hello[1]) is None for key in indexes)
        assert pages(admin, **{"param.text": "hello"}) == [bobs, hello[2]]
        for query in (
            {"param.text": "h" * 21},  # longer than indexed
            {"param.digits": "6"},  # not declared searchable
            {"param.text": "x", "name": ["leibniz_pi"]},
            {"param.text": "x", "param.other": "y"},
            {"param.text": "x", "line": "default"},
        ):
            reply = admin.get("/tasks", params=query)
            assert reply.status_code == 422, query
            assert reply.json()["detail"], query
