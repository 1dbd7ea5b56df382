"""Bulk cancel, retry and delete through the real stack: lists of ids mixing what may and may
not be acted on, a filter paged by its cursor, the TASKLINE_BULK_MAX bound, refused bodies,
viewers, histories, and two bulk cancels of the same tasks at once."""

import functools
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.client import at_once, read, submit, wait_done, wait_state
from tests.e2e.test_cli import TASKLINE, cli_env
from tests.processes import Stack

pytestmark = pytest.mark.e2e

BOUND = 5
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def bulk_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of this module's own (its filters see only its tasks), bound to BOUND tasks."""
    with Stack(tmp_path_factory.mktemp("bulk"), TASKLINE_BULK_MAX=str(BOUND)) as stack:
        stack.start()
        yield stack


def later(seconds: float = 3600) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def postponed(client: httpx.Client, text: str = "x") -> str:
    """A task that waits (SCHEDULED) for an hour: nothing runs it meanwhile."""
    return submit(client, "reverse", {"text": text}, not_before=later())["id"]


def by_id(answer: httpx.Response) -> dict[str, dict]:
    assert answer.status_code == 200, answer.text
    return {r["id"]: r for r in answer.json()["results"]}


def history(client: httpx.Client, task_id: str) -> list[dict]:
    answer = client.get(f"/tasks/{task_id}/history")
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_mixed_list_acts_on_the_callers_tasks_and_reports_the_rest(bulk_stack: Stack) -> None:
    with bulk_stack.client("alice") as alice, bulk_stack.client("bob") as bob:
        waiting = postponed(alice)
        ended = submit(alice, "reverse", {"text": "done"})["id"]
        assert wait_done(alice, ended)["state"] == "SUCCESS"
        running = submit(alice, "leibniz_pi", {"digits": 8}, delay_seconds=30)["id"]
        wait_state(alice, running, {"PROGRESS"})
        bobs = postponed(bob)

        ids = [waiting, running, ended, bobs, UNKNOWN_ID, waiting]
        results = by_id(alice.post("/tasks/bulk/cancel", json={"ids": ids}))
        assert list(results) == [waiting, running, ended, bobs, UNKNOWN_ID]  # once each
        assert results[waiting]["outcome"] == "cancelled"
        assert results[running]["outcome"] == "cancelling"
        assert results[ended] | {"detail": None} == {
            "id": ended,
            "outcome": "refused",
            "status": 409,
            "detail": None,
            "retry_id": None,
        }
        assert "already ended in SUCCESS" in results[ended]["detail"]
        # Another user's task reads as an unknown one, and is left as it was.
        for hidden in (bobs, UNKNOWN_ID):
            assert results[hidden]["outcome"] == "refused" and results[hidden]["status"] == 404
            assert results[hidden]["detail"] == f"task {hidden} not found"
        assert read(bob, bobs)["state"] == "SCHEDULED"
        assert wait_done(alice, running, timeout=10)["state"] == "CANCELLED"
        assert read(alice, waiting)["state"] == "CANCELLED"
        # Each history names the bulk action.
        [cancelled] = [h for h in history(alice, waiting) if h["change"] == "cancelled"]
        assert cancelled["via"] == "bulk" and cancelled["from"] == "SCHEDULED"
        [asked] = [h for h in history(alice, running) if h["change"] == "cancel requested"]
        assert asked["via"] == "bulk"

        # Retry: the cancelled ones are retried once, linked both ways; the others refused.
        results = by_id(
            alice.post("/tasks/bulk/retry", json={"ids": [waiting, running, ended, bobs]})
        )
        assert [r["outcome"] for r in results.values()] == [
            "retried",
            "retried",
            "refused",
            "refused",
        ]
        assert [results[ended]["status"], results[bobs]["status"]] == [409, 404]
        for origin in (waiting, running):
            retry_id = results[origin]["retry_id"]
            assert read(alice, retry_id)["retry_of"] == origin
            assert read(alice, origin)["retried_by"] == retry_id
            [retried] = [h for h in history(alice, origin) if h["change"] == "retried"]
            assert retried["by"] == retry_id and retried["via"] == "bulk"
        again = by_id(alice.post("/tasks/bulk/retry", json={"ids": [waiting]}))
        assert again[waiting]["status"] == 409
        assert again[waiting]["detail"]["retried_by"] == results[waiting]["retry_id"]

        # Delete: a running task (the retry of the one cancelled running) is refused, ended
        # ones are gone, another's is not found.
        busy = results[running]["retry_id"]
        wait_state(alice, busy, {"PROGRESS"})
        results = by_id(
            alice.post("/tasks/bulk/delete", json={"ids": [ended, waiting, busy, bobs]})
        )
        assert [r["outcome"] for r in results.values()] == [
            "deleted",
            "deleted",
            "refused",
            "refused",
        ]
        assert [results[busy]["status"], results[bobs]["status"]] == [409, 404]
        assert "running" in results[busy]["detail"]
        for gone in (ended, waiting):
            assert alice.get(f"/tasks/{gone}").status_code == 404
        assert read(bob, bobs)["state"] == "SCHEDULED"

        # An admin acts on every user's tasks.
        with bulk_stack.client("admin") as admin:
            results = by_id(admin.post("/tasks/bulk/cancel", json={"ids": [bobs, busy]}))
            assert results[bobs]["outcome"] == "cancelled"
            assert results[busy]["outcome"] == "cancelling"
            assert wait_done(admin, busy, timeout=10)["state"] == "CANCELLED"
            # Bob's task goes: the filters of the tests below see bob's tasks alone.
            assert (
                by_id(admin.post("/tasks/bulk/delete", json={"ids": [bobs]}))[bobs]["outcome"]
                == "deleted"
            )


def test_a_filter_acts_page_by_page_on_the_callers_matching_tasks(bulk_stack: Stack) -> None:
    with bulk_stack.client("bob") as bob, bulk_stack.client("alice") as alice:
        mine = [postponed(bob, f"b{i}") for i in range(BOUND + 2)]
        other_type = submit(bob, "word_report", {"text": "a b"}, not_before=later())["id"]
        alices = postponed(alice)
        body: dict = {"filter": {"state": "SCHEDULED", "name": "reverse"}}

        first = bob.post("/tasks/bulk/cancel", json=body)
        assert first.status_code == 200, first.text
        page = first.json()
        assert [r["outcome"] for r in page["results"]] == ["cancelled"] * BOUND
        assert page["next_cursor"]
        second = bob.post("/tasks/bulk/cancel", json={**body, "cursor": page["next_cursor"]})
        rest = second.json()
        assert rest["next_cursor"] is None
        # Newest first, as the listing orders them; each once.
        done = [r["id"] for r in page["results"] + rest["results"]]
        assert done == mine[::-1]
        assert all(read(bob, t)["state"] == "CANCELLED" for t in mine)
        # Neither another type nor another user's task matched.
        assert read(bob, other_type)["state"] == "SCHEDULED"
        assert read(alice, alices)["state"] == "SCHEDULED"
        [entry] = [h for h in history(bob, mine[0]) if h["change"] == "cancelled"]
        assert entry["via"] == "bulk"

        # A smaller `limit`, then the rest; a retry by filter links each new task.
        retried = bob.post(
            "/tasks/bulk/retry", json={"filter": {"state": "CANCELLED"}, "limit": 2}
        ).json()
        assert [r["outcome"] for r in retried["results"]] == ["retried"] * 2
        for result in retried["results"]:
            assert read(bob, result["retry_id"])["retry_of"] == result["id"]

        # Delete by filter, page after page, until no cursor is left.
        deleted: list[str] = []
        cursor = None
        for _ in range(10):
            answer = bob.post(
                "/tasks/bulk/delete",
                json={"filter": {"name": "reverse"}} | ({"cursor": cursor} if cursor else {}),
            ).json()
            deleted += [r["id"] for r in answer["results"] if r["outcome"] == "deleted"]
            if not (cursor := answer["next_cursor"]):
                break
        retries = [r["retry_id"] for r in retried["results"]]
        assert set(deleted) == set(mine) | set(retries)
        assert bob.get("/tasks", params={"name": "reverse"}).json()["items"] == []
        assert read(bob, other_type)["state"] == "SCHEDULED"


def test_bodies_refused_whole_with_a_detail_and_nothing_changed(bulk_stack: Stack) -> None:
    with bulk_stack.client("alice") as alice, bulk_stack.client("carol") as carol:
        task = postponed(alice)
        # BOUND + 1 distinct ids (an id named twice counts once).
        too_many = [task] + [f"00000000-0000-4000-8000-{i:012d}" for i in range(BOUND)]
        for action in ("cancel", "retry", "delete"):
            for body in (
                {},
                {"ids": [task], "filter": {}},
                {"ids": []},
                {"ids": [task], "cursor": "1"},
                {"ids": [task], "extra": 1},
                {"filter": {"name": "reverse", "line": "main"}},
                {"filter": {"state": "NOPE"}},
                {"filter": {"owner": "bob"}},
                {"filter": {}, "cursor": "not a number"},
                [task],
            ):
                answer = alice.post(f"/tasks/bulk/{action}", json=body)
                assert answer.status_code == 422, (action, body, answer.text)
                assert answer.json()["detail"], answer.text
            for body in ({"ids": too_many}, {"filter": {}, "limit": BOUND + 1}):
                answer = alice.post(f"/tasks/bulk/{action}", json=body)
                assert answer.status_code == 422, answer.text
                detail = answer.json()["detail"]
                assert detail["setting"] == "TASKLINE_BULK_MAX" and detail["max"] == BOUND
                assert "TASKLINE_BULK_MAX" in detail["message"]
            # A viewer changes nothing, whatever it names.
            answer = carol.post(f"/tasks/bulk/{action}", json={"ids": [task]})
            assert answer.status_code == 403, answer.text
            answer = carol.post(f"/tasks/bulk/{action}", json={"filter": {}})
            assert answer.status_code == 403, answer.text
        assert read(alice, task)["state"] == "SCHEDULED"
        assert [h["change"] for h in history(alice, task)] == ["created"]
        assert alice.delete(f"/tasks/{task}").status_code == 204


def test_two_bulk_cancels_of_the_same_tasks_cancel_each_once(bulk_stack: Stack) -> None:
    with bulk_stack.client("alice") as alice, bulk_stack.client("admin") as admin:
        for _ in range(3):
            ids = [postponed(alice, str(i)) for i in range(BOUND)]
            first, second = at_once(
                [
                    functools.partial(alice.post, "/tasks/bulk/cancel", json={"ids": ids}),
                    functools.partial(admin.post, "/tasks/bulk/cancel", json={"ids": ids[::-1]}),
                ]
            )
            one, other = by_id(first), by_id(second)
            for task_id in ids:
                outcomes = sorted([one[task_id]["outcome"], other[task_id]["outcome"]])
                assert outcomes == ["cancelled", "refused"], (task_id, one, other)
                refused = one[task_id] if one[task_id]["outcome"] == "refused" else other[task_id]
                assert refused["status"] == 409
                changes = [h["change"] for h in history(alice, task_id)]
                assert changes == ["created", "cancelled"], changes
            deleted = by_id(alice.post("/tasks/bulk/delete", json={"ids": ids}))
            assert {r["outcome"] for r in deleted.values()} == {"deleted"}


def test_the_command_acts_on_several_ids_or_a_filter_and_exits_7_on_a_refusal(
    bulk_stack: Stack, tmp_path: Path
) -> None:
    assert TASKLINE.exists(), f"{TASKLINE} is not installed (pip install -e .)"

    def taskline(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TASKLINE), *args],
            env=cli_env(bulk_stack, tmp_path / "config", "alice"),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=90,
        )

    with bulk_stack.client("alice") as alice:
        first, second = postponed(alice, "one"), postponed(alice, "two")
        done = taskline("cancel", first, second, UNKNOWN_ID)
        assert done.returncode == 7, done
        rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()}
        assert rows[first][0] == rows[second][0] == "cancelled", done.stdout
        assert rows[UNKNOWN_ID][:1] == ["refused"] and "not found" in done.stdout
        again = taskline("cancel", first, second)
        assert again.returncode == 7 and "already ended in CANCELLED" in again.stdout, again

        retried = taskline("retry", "--state", "cancelled", "--name", "reverse", "--json")
        assert retried.returncode == 0, retried
        results = json.loads(retried.stdout)["results"]
        assert {r["id"] for r in results} == {first, second}
        assert all(r["outcome"] == "retried" for r in results)
        for result in results:
            assert read(alice, result["retry_id"])["retry_of"] == result["id"]
            wait_done(alice, result["retry_id"])

        deleted = taskline("delete", first, second)
        assert deleted.returncode == 0, deleted
        assert deleted.stdout.count("deleted") == 2, deleted.stdout
        assert alice.get(f"/tasks/{first}").status_code == 404
        retries = [r["retry_id"] for r in results]
        assert taskline("delete", *retries).returncode == 0

        # Nothing is sent for ids and a filter together, or for neither.
        for usage in (
            ("cancel",),
            ("delete", first, "--state", "QUEUED"),
            ("retry", first, second, "--wait"),
        ):
            refused = taskline(*usage)
            assert refused.returncode == 2, (usage, refused)
