"""Searching the listing: several states, several names, an owner, merged from the indexes."""

from collections.abc import Callable

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
