"""Two lines, each its own ordered queue with its own worker: a long task on one never holds
up the other's tasks; within each line, one at a time, by priority then submission."""

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from taskline.core.settings import lines_of
from tests.client import read, submit, wait_done, wait_state
from tests.e2e.test_cli import TASKLINE, cli_env
from tests.e2e.test_line_events import Commands
from tests.processes import Stack
from tests.ui_browser import chromium, page_errors, sign_in

pytestmark = pytest.mark.e2e

LINES = "slow=leibniz_pi;default=*"


@pytest.fixture(scope="module")
def lines_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack whose leibniz_pi tasks are on a line of their own: a worker per line."""
    with Stack(tmp_path_factory.mktemp("lines"), TASKLINE_LINES=LINES) as stack:
        stack.start("api", "scheduler", "worker", "worker:slow")
        yield stack


@pytest.fixture
def admin(lines_stack: Stack) -> Iterator[httpx.Client]:
    with lines_stack.client() as client:
        yield client


def pi(api: httpx.Client, priority: int = 5, delay: float = 0) -> dict:
    return submit(api, "leibniz_pi", {"digits": 3}, priority=priority, delay_seconds=delay)


def text(api: httpx.Client, priority: int = 5, delay: float = 0) -> dict:
    return submit(api, "reverse", {"text": "ab"}, priority=priority, delay_seconds=delay)


def one_at_a_time(tasks: list[dict]) -> None:
    """No two runs of the tasks overlap: each starts once the one before it ended."""
    runs = sorted((t["started_at"], t["finished_at"]) for t in tasks)
    for (_, ended), (started, _) in zip(runs, runs[1:], strict=False):
        assert ended <= started, runs


@pytest.mark.timeout(120)
def test_a_long_task_on_one_line_never_holds_up_the_other_and_each_keeps_its_order(
    admin: httpx.Client,
) -> None:
    long = pi(admin, delay=4)
    wait_state(admin, long["id"], {"STARTED", "PROGRESS"})
    # The slow line is busy: its next tasks wait for the long one, by priority.
    slow = [pi(admin, priority=p) for p in (2, 8, 5)]
    # The default line is not: a short blocker, then a backlog ordered by priority.
    blocker = text(admin, delay=1)
    wait_state(admin, blocker["id"], {"STARTED", "PROGRESS"})
    quick = [text(admin, priority=p) for p in (3, 9, 1, 9, 5, 0)]
    assert {t["line"] for t in [long, *slow]} == {"slow"}
    assert {t["line"] for t in [blocker, *quick]} == {"default"}
    assert [read(admin, t["id"])["queue_position"] for t in slow] == [3, 1, 2]
    assert [read(admin, t["id"])["queue_position"] for t in quick] == [4, 1, 5, 2, 3, 6]

    done_quick = [wait_done(admin, t["id"], 30) for t in [blocker, *quick]]
    # Every default task ran and ended while the long one was still running.
    assert read(admin, long["id"])["state"] in {"STARTED", "PROGRESS"}
    done_long = wait_done(admin, long["id"], 30)
    assert all(t["state"] == "SUCCESS" for t in done_quick)
    assert max(t["finished_at"] for t in done_quick) < done_long["finished_at"]
    assert min(t["started_at"] for t in done_quick) > done_long["started_at"]
    done_slow = [wait_done(admin, t["id"], 30) for t in slow]
    assert all(t["state"] == "SUCCESS" for t in [done_long, *done_slow])

    # Within each line: one at a time, by priority then submission.
    one_at_a_time([done_long, *done_slow])
    one_at_a_time(done_quick)
    by_start = sorted(done_slow, key=lambda t: t["started_at"])
    assert [t["priority"] for t in by_start] == [8, 5, 2]
    assert min(t["started_at"] for t in done_slow) >= done_long["finished_at"]
    by_start = sorted(done_quick[1:], key=lambda t: t["started_at"])
    assert [t["id"] for t in by_start] == [quick[i]["id"] for i in (1, 3, 4, 0, 2, 5)]
    assert min(t["started_at"] for t in done_quick[1:]) >= done_quick[0]["finished_at"]


@pytest.mark.timeout(90)
def test_listings_queues_workers_and_events_keep_to_a_line(lines_stack: Stack) -> None:
    with lines_stack.client() as admin, lines_stack.client("alice") as alice:
        mine = wait_done(alice, pi(alice)["id"])
        theirs = wait_done(admin, text(admin)["id"])

        def listed(api: httpx.Client, **query: str) -> list[str]:
            response = api.get("/tasks", params=query)
            assert response.status_code == 200, response.text
            return [t["id"] for t in response.json()["items"]]

        slow, default = listed(admin, line="slow"), listed(admin, line="default")
        assert mine["id"] in slow and theirs["id"] not in slow
        assert theirs["id"] in default and mine["id"] not in default
        assert {read(admin, i)["name"] for i in slow} == {"leibniz_pi"}
        assert "leibniz_pi" not in {read(admin, i)["name"] for i in default}
        assert listed(admin, line="slow", state="SUCCESS")[0] == mine["id"]
        assert listed(alice, line="default") == []  # alice's own tasks only
        assert listed(alice, line="slow") == [mine["id"]]
        assert listed(admin, line="nowhere") == []
        refused = admin.get("/tasks", params={"line": "slow", "name": "leibniz_pi"})
        assert refused.status_code == 422 and "not both" in refused.text
        # FastAPI's shape of a query that does not validate, as the OpenAPI document says
        assert refused.json()["detail"][0]["loc"] == ["query", "line"]
        assert admin.get("/tasks", params={"line": "Not A Line"}).status_code == 422

        lines = lines_of(lines_stack.settings)
        queue = admin.get("/queue", params={"line": "slow"}).json()
        assert (queue["line"], queue["queue"]) == ("slow", lines.named("slow").queue)
        assert queue["consumers"] == 1 and len(queue["workers"]) == 1
        main = admin.get("/queue").json()
        assert (main["line"], main["queue"]) == ("default", lines_stack.settings.queue)
        assert main["workers"] != queue["workers"]
        assert admin.get("/queue", params={"line": "nowhere"}).status_code == 404
        shown = admin.get("/lines").json()["lines"]
        assert [(q["line"], q["consumers"]) for q in shown] == [("slow", 1), ("default", 1)]

        workers = admin.get("/workers").json()["workers"]
        assert [(w["line"], w["queue"], w["active"]) for w in workers] == [
            ("slow", lines.named("slow").queue, True),
            ("default", lines_stack.settings.queue, True),
        ]
        only = admin.get("/workers", params={"line": "slow"}).json()
        assert [w["line"] for w in only["workers"]] == ["slow"]
        assert only["active"] == queue["workers"][0]

        # GET /events?line= : the snapshot and the changes of that line only.
        with admin.stream("GET", "/events", params={"line": "slow"}) as events:
            assert events.status_code == 200
            lines_read = events.iter_lines()
            snapshot = next(line for line in lines_read if line.startswith("data:"))
            recent = {t["id"] for t in json.loads(snapshot[5:])["recent"]}
            assert mine["id"] in recent and theirs["id"] not in recent
            other, own = text(admin), pi(admin)
            told = []
            for line in lines_read:
                if line.startswith("data:") and '"id"' in line:
                    told.append(line)
                    if own["id"] in line and '"ended"' in line:
                        break
            assert any(own["id"] in line for line in told)
            assert not any(other["id"] in line for line in told)
        wait_done(admin, other["id"])
        assert admin.get("/events", params={"line": "nowhere"}).status_code == 404


def test_ready_and_metrics_count_the_consumers_of_every_line(lines_stack: Stack) -> None:
    """A worker on each line: /ready counts both and names each line's; /metrics tells each
    line's consumers, depth and postponed tasks under its own label."""
    ready = httpx.get(f"{lines_stack.url}/ready", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["workers"] == 2
    assert ready.json()["lines"] == {"slow": 1, "default": 1}
    with lines_stack.client() as admin:
        metrics = admin.get("/metrics").text.splitlines()
    for line in ("slow", "default"):
        assert f'taskline_consumers{{line="{line}"}} 1.0' in metrics
        assert any(m.startswith(f'taskline_queue_depth{{line="{line}"}} ') for m in metrics)
        assert any(m.startswith(f'taskline_scheduled{{line="{line}"}} ') for m in metrics)
    assert "taskline_workers 2.0" in metrics


def test_every_line_shown_at_once_reads_the_workers_reports_once(
    lines_stack: Stack, admin: httpx.Client
) -> None:
    """GET /lines shows each line with the workers that consume it: their reports are read
    once for all the lines, not once a line."""
    workers = f"ZREVRANGE {lines_stack.key('workers')} "
    with Commands(lines_stack.redis, workers) as reads:
        shown = admin.get("/lines").json()["lines"]
    assert [(q["line"], len(q["workers"])) for q in shown] == [("slow", 1), ("default", 1)]
    assert reads.count == 1


@pytest.mark.timeout(90)
def test_the_command_line_lists_and_shows_each_line(lines_stack: Stack, tmp_path: Path) -> None:
    with lines_stack.client() as admin:
        slow, quick = wait_done(admin, pi(admin)["id"]), wait_done(admin, text(admin)["id"])
    env = cli_env(lines_stack, tmp_path)

    def run(*args: str) -> dict:
        done = subprocess.run(
            [str(TASKLINE), *args, "--json"], env=env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    listed = [t["id"] for t in run("list", "--line", "slow")["items"]]
    assert slow["id"] in listed and quick["id"] not in listed
    assert {t["line"] for t in run("list", "--line", "default")["items"]} == {"default"}
    shown = run("queue")["lines"]
    assert [(q["line"], q["consumers"]) for q in shown] == [("slow", 1), ("default", 1)]
    assert [q["line"] for q in run("queue", "--line", "slow")["lines"]] == ["slow"]
    workers = run("workers", "--line", "slow")["workers"]
    assert [(w["line"], w["active"]) for w in workers] == [("slow", True)]
    table = subprocess.run(
        [str(TASKLINE), "queue"], env=env, capture_output=True, text=True, timeout=60
    )
    assert table.returncode == 0 and "slow" in table.stdout and "default" in table.stdout


@pytest.mark.timeout(120)
def test_the_dashboard_shows_one_line_or_all(lines_stack: Stack) -> None:
    from playwright.sync_api import expect

    with chromium() as browser, lines_stack.client() as admin:
        expect.set_options(timeout=15_000)
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors = page_errors(page)
        sign_in(page, lines_stack.url, "admin")
        choice = page.locator("#line-filter")
        expect(page.locator("#line-choice")).to_be_visible()
        expect(choice.locator("option")).to_have_text(["all lines", "slow", "default"])
        # Both lines busy, each with a task waiting behind it.
        long, busy = pi(admin, delay=4), text(admin, delay=4)
        for task in (long, busy):
            wait_state(admin, task["id"], {"STARTED", "PROGRESS"})
        slow, quick = pi(admin, priority=1), text(admin, priority=1)
        waiting = page.locator("#waiting > [data-task-id]")
        expect(waiting).to_have_count(2)
        for task in (slow, quick):  # first in each line, each shown so
            row = page.locator(f'#waiting > [data-task-id="{task["id"]}"]')
            expect(row.locator(".pos")).to_have_text("#1")
            expect(row.locator(".line")).to_have_text(f"line {task['line']}")
        expect(page.locator("#depth")).to_have_text("2")
        expect(page.locator("#workers > li")).to_have_count(2)

        choice.select_option("slow")
        expect(waiting).to_have_count(1)
        expect(waiting.first).to_have_attribute("data-task-id", slow["id"])
        expect(page.locator("#depth")).to_have_text("1")
        running = page.locator("#running > [data-task-id]")
        expect(running).to_have_count(1)
        expect(running.first).to_have_attribute("data-task-id", long["id"])
        expect(page.locator("#workers > li")).to_have_count(1)
        expect(page.locator("#workers > li .hint").first).to_contain_text("line slow")
        # Changes of the other line are not shown; this line's are.
        other, more = text(admin, priority=1), pi(admin, priority=9)
        expect(waiting).to_have_count(2)
        expect(waiting.first).to_have_attribute("data-task-id", more["id"])
        expect(page.locator(f'[data-task-id="{other["id"]}"]')).to_have_count(0)
        for task in (long, busy, slow, quick, other, more):
            wait_done(admin, task["id"], 30)
        assert errors == []


def cancelled_pi(api: httpx.Client) -> dict:
    """A leibniz_pi (on the slow line) postponed, then cancelled: one that may be retried."""
    task = submit(api, "leibniz_pi", {"digits": 3}, not_before="2999-01-01T00:00:00Z")
    assert api.post(f"/tasks/{task['id']}/cancel").status_code == 200
    return task


def told_until(lines_read: Iterator[str], task_id: str, kind: str) -> list[dict]:
    """The task events of a stream up to the one of `kind` about `task_id`."""
    told = []
    for line in lines_read:
        if line.startswith("data:") and '"kind"' in line:
            told.append(json.loads(line[5:]))
            if (told[-1]["id"], told[-1]["kind"]) == (task_id, kind):
                return told
    raise AssertionError("the stream ended")


@pytest.mark.timeout(60)
def test_a_retry_is_told_on_the_line_of_the_task_it_retries(lines_stack: Stack) -> None:
    """The `retried` change of a task names its line, as every change does: the watchers of
    that line are told it, those of another line are not."""
    with lines_stack.client() as admin:
        with admin.stream("GET", "/events", params={"line": "slow"}) as events:
            lines_read = events.iter_lines()
            next(line for line in lines_read if line.startswith("data:"))  # the snapshot
            origin = cancelled_pi(admin)
            retry = admin.post(f"/tasks/{origin['id']}/retry").json()
            told = told_until(lines_read, retry["id"], "created")
        retried = [e for e in told if e["kind"] == "retried"]
        assert [(e["id"], e["by"], e["line"]) for e in retried] == [
            (origin["id"], retry["id"], "slow")
        ]
        with admin.stream("GET", "/events", params={"line": "default"}) as events:
            lines_read = events.iter_lines()
            next(line for line in lines_read if line.startswith("data:"))
            other = cancelled_pi(admin)
            again = admin.post(f"/tasks/{other['id']}/retry").json()
            mark = text(admin)
            told = told_until(lines_read, mark["id"], "created")
        assert not [e for e in told if other["id"] in (e["id"], e.get("by"))]
        for task in (retry, again, mark):
            assert wait_done(admin, task["id"])["state"] == "SUCCESS"


@pytest.fixture
def line_removed(make_stack: Callable[..., Stack]) -> Iterator[tuple[Stack, str, str]]:
    """An API whose TASKLINE_LINES no longer has `slow`, with a postponed task of alice's on
    it and one on the main line: (stack, the slow one, the main one)."""
    stack = make_stack(TASKLINE_LINES=LINES)
    stack.start("api")
    with stack.client("alice") as alice:
        later = "2099-01-01T00:00:00Z"
        slow = submit(alice, "leibniz_pi", {"digits": 5}, not_before=later)["id"]
        main = submit(alice, "reverse", {"text": "x"}, not_before=later)["id"]
    stack.env["TASKLINE_LINES"] = "default=*"
    stack.restart("api")
    yield stack, slow, main
    stack.env["TASKLINE_LINES"] = LINES


def test_the_eta_of_a_task_whose_line_was_removed_is_a_503_that_names_it(
    line_removed: tuple[Stack, str, str],
) -> None:
    stack, slow, main = line_removed
    with stack.client("alice") as alice:
        answer = alice.get(f"/tasks/{slow}/eta")
        assert answer.status_code == 503, answer.text
        assert "TASKLINE_LINES" in answer.json()["detail"]
        assert alice.get(f"/tasks/{main}/eta").json()["expected_start"]


def test_a_bulk_action_reports_a_task_whose_line_was_removed_refused_and_goes_on(
    line_removed: tuple[Stack, str, str],
) -> None:
    stack, slow, main = line_removed
    with stack.client("alice") as alice:
        answer = alice.post("/tasks/bulk/cancel", json={"ids": [slow, main]})
        assert answer.status_code == 200, answer.text
        results = {r["id"]: r for r in answer.json()["results"]}
        assert results[slow]["outcome"] == "refused" and results[slow]["status"] == 503
        assert "TASKLINE_LINES" in results[slow]["detail"]
        assert results[main]["outcome"] == "cancelled"
        # a filter goes past it too (else every call would stop at it, newest first)
        answer = alice.post("/tasks/bulk/delete", json={"filter": {}})
        assert answer.status_code == 200, answer.text
        outcomes = {r["id"]: r["outcome"] for r in answer.json()["results"]}
        assert outcomes == {slow: "refused", main: "deleted"}
        assert read(alice, slow)["state"] == "SCHEDULED"
