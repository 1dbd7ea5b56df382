"""The `taskline` command, as installed, against real worker, scheduler and API processes."""

import json
import os
import re
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO

import httpx
import pytest

from taskline.builtins.text import reverse_graphemes
from taskline.worker.celery_app import create_celery_app
from tests.client import submit, wait_done, wait_state
from tests.processes import PASSWORDS, Stack
from tests.support import ROOT, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

TASKLINE = Path(sys.executable).with_name("taskline")
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def cli_env(stack: Stack, config: Path, user: str | None = "admin") -> dict[str, str]:
    """The environment of a `taskline` run: this stack's URL, its own config directory and,
    unless `user` is None, that user's credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLINE_")}
    env.update(TASKLINE_URL=stack.url, XDG_CONFIG_HOME=str(config), COLUMNS="200")
    # The installed command, running this checkout's package (the environment's editable
    # install may point at another checkout).
    env.update(PYTHONPATH=str(ROOT))
    if user is not None:
        env.update(TASKLINE_USER=user, TASKLINE_PASSWORD=PASSWORDS[user])
    return env


Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def config(tmp_path: Path) -> Path:
    """A config directory of the test's own (XDG_CONFIG_HOME), never the user's."""
    return tmp_path / "config"


@pytest.fixture
def taskline(stack: Stack, config: Path) -> Run:
    """Run the installed command to its end: taskline("status", id, user="alice")."""
    assert TASKLINE.exists(), f"{TASKLINE} is not installed (pip install -e .)"

    def run(
        *args: str, user: str | None = "admin", env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TASKLINE), *args],
            env=env or cli_env(stack, config, user),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=90,
        )

    return run


class Lines:
    """The lines a process writes to one of its pipes, collected by a thread as they come."""

    def __init__(self, pipe: IO[str]) -> None:
        self.pipe = pipe
        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        for line in self.pipe:
            self.lines.append(line.rstrip("\n"))

    def json(self) -> list[dict]:
        """Every line so far as JSON (for `--json` output)."""
        return [json.loads(line) for line in list(self.lines)]


@dataclass
class Running:
    """`taskline` running in the background, its stdout and stderr read as they come."""

    proc: subprocess.Popen[str]
    stdout: Lines
    stderr: Lines

    def wait(self, timeout: float) -> int:
        """Its exit code, once it and both readers are done."""
        code = self.proc.wait(timeout)
        self.stdout.thread.join(timeout)
        self.stderr.thread.join(timeout)
        return code

    def stop(self) -> None:
        """Kill it if it still runs, and release its pipes."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait(10)
        self.stdout.pipe.close()
        self.stderr.pipe.close()


@pytest.fixture
def spawn(stack: Stack, config: Path) -> Iterator[Callable[..., Running]]:
    """Start `taskline` in the background as admin; killed at the end if still running."""
    running: list[Running] = []

    def start(*args: str) -> Running:
        proc = subprocess.Popen(
            [str(TASKLINE), *args],
            env=cli_env(stack, config),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout and proc.stderr
        running.append(Running(proc, Lines(proc.stdout), Lines(proc.stderr)))
        return running[-1]

    try:
        yield start
    finally:
        for each in running:
            each.stop()


def newest_id(api: httpx.Client) -> str | None:
    """The last task created, to tell whether a command created one."""
    items = api.get("/tasks", params={"limit": 1}).json()["items"]
    return items[0]["id"] if items else None


def test_submit_wait_prints_the_result(taskline: Run) -> None:
    done = taskline("submit", "reverse", "--param", "text=hello", "--wait")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "olleh\n"
    assert "Traceback" not in done.stderr


def test_submit_wait_json_streams_rising_progress_then_the_result(taskline: Run) -> None:
    done = taskline(
        "submit", "leibniz_pi", "--param", "digits=3", "--delay", "2", "--wait", "--json"
    )
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]  # each line is JSON
    assert lines[0]["event"] == "created" and lines[0]["data"]["params"]["digits"] == 3
    task_id = lines[0]["data"]["id"]
    percents = [
        line["data"]["progress"]["percent"] for line in lines if line["event"] == "progress"
    ]
    assert len(percents) >= 5 and percents == sorted(percents) and percents[-1] == 100, percents
    assert all(line["data"]["id"] == task_id for line in lines)
    assert lines[-2]["data"]["state"] == "SUCCESS"
    assert lines[-1]["event"] == "result"
    assert lines[-1]["data"]["result"]["pi"] == "3.141"


def test_submit_without_wait_prints_the_created_task(taskline: Run, api: httpx.Client) -> None:
    done = taskline(
        "submit",
        "reverse",
        "-p",
        "text=later",
        "--priority",
        "7",
        "--not-before",
        "2099-01-01T00:00Z",
    )
    assert done.returncode == 0, done.stderr
    task_id, name, state, *_ = done.stdout.split()
    assert (name, state) == ("reverse", "SCHEDULED")
    task = api.get(f"/tasks/{task_id}").json()
    assert task["priority"] == 7 and task["params"]["text"] == "later"
    assert task["not_before"].startswith("2099-01-01T00:00:00")
    api.post(f"/tasks/{task_id}/cancel")


def test_a_task_cancelled_while_followed_exits_with_the_cancelled_code(
    spawn: Callable[..., Running], api: httpx.Client
) -> None:
    follower = spawn("submit", "leibniz_pi", "--param", "digits=9", "--delay", "60", "--wait")
    first = wait_until(lambda: follower.stderr.lines and follower.stderr.lines[0], 30)
    assert first.startswith("submitted ")
    task_id = first.removeprefix("submitted ")
    wait_state(api, task_id, {"STARTED", "PROGRESS"})
    assert api.post(f"/tasks/{task_id}/cancel").status_code == 200
    assert follower.wait(30) == 5
    assert f"task {task_id} ended in CANCELLED" in follower.stderr.lines
    assert follower.stdout.lines == []  # no result


def test_result_exit_codes_tell_failure_cancelled_and_unfinished(
    taskline: Run, api: httpx.Client, stack: Stack
) -> None:
    # The API refuses bad params (422); a message sent by name, as Flower sends, fails at run
    # time and is adopted into a record.
    app = create_celery_app(stack.settings, with_backend=False)
    failed_id = app.send_task("leibniz_pi", kwargs={"digits": -3}).id
    app.close()
    wait_until(lambda: api.get(f"/tasks/{failed_id}").status_code == 200, 30)
    assert wait_done(api, failed_id)["state"] == "FAILURE"
    failed = taskline("result", failed_id)
    assert failed.returncode == 4, failed.stderr
    assert "ended in FAILURE" in failed.stderr and "ValidationError" in failed.stderr

    waiting = submit(api, "reverse", {"text": "x"}, not_before="2099-01-01T00:00:00Z")
    unfinished = taskline("result", waiting["id"])
    assert unfinished.returncode == 6 and "SCHEDULED" in unfinished.stdout
    assert taskline("cancel", waiting["id"]).returncode == 0
    cancelled = taskline("result", waiting["id"], "--json")
    assert cancelled.returncode == 5
    assert json.loads(cancelled.stderr)["detail"]["state"] == "CANCELLED"


def test_retry_and_clone_make_new_tasks_linked_to_the_old(taskline: Run, api: httpx.Client) -> None:
    waiting = submit(api, "reverse", {"text": "again"}, not_before="2099-01-01T00:00:00Z")
    assert taskline("cancel", waiting["id"]).returncode == 0
    retried = taskline("retry", waiting["id"], "--json")
    assert retried.returncode == 0, retried.stderr
    retry = json.loads(retried.stdout)
    assert retry["retry_of"] == waiting["id"] and retry["params"] == waiting["params"]
    shown = taskline("status", waiting["id"])
    assert re.search(rf"retried by\s+{retry['id']}", shown.stdout), shown.stdout
    twice = taskline("retry", waiting["id"])
    assert twice.returncode == 3 and f"retried already, by task {retry['id']}" in twice.stderr
    assert wait_done(api, retry["id"])["result"] == "niaga"

    cloned = taskline("clone", waiting["id"], "-p", "text=other", "--priority", "8", "--wait")
    assert cloned.returncode == 0, cloned.stderr
    assert cloned.stdout.strip() == "rehto" and cloned.stderr.startswith("submitted ")
    clone_id = cloned.stderr.splitlines()[0].removeprefix("submitted ")
    copy = wait_done(api, clone_id)
    assert (copy["clone_of"], copy["priority"], copy["params"]["text"]) == (
        waiting["id"],
        8,
        "other",
    )
    refused = taskline("clone", waiting["id"], "-p", "text=null")  # back to no default: 422
    assert refused.returncode == 3 and "params.text" in refused.stderr


def test_history_shows_every_change_oldest_first(taskline: Run, api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "story"}, not_before="2099-01-01T00:00:00Z")
    assert api.patch(f"/tasks/{task['id']}", json={"priority": 8}).status_code == 200
    assert taskline("cancel", task["id"]).returncode == 0
    shown = taskline("history", task["id"])
    assert shown.returncode == 0, shown.stderr
    changes = [word for word in shown.stdout.split() if word in ("created", "edited", "cancelled")]
    assert changes == ["created", "edited", "cancelled"], shown.stdout
    as_json = json.loads(taskline("history", task["id"], "--json").stdout)
    assert as_json == api.get(f"/tasks/{task['id']}/history").json()
    other = taskline("history", task["id"], user="alice")  # another user's task: not found
    assert other.returncode == 3 and "not found" in other.stderr


def test_status_list_and_stats_json_parse(taskline: Run, api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "json"})
    wait_done(api, task["id"])
    status = taskline("status", task["id"], "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["result"] == "nosj"
    listed = taskline("--json", "list", "--name", "reverse", "--state", "success", "--limit", "3")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert 1 <= len(items) <= 3 and items[0]["id"] == task["id"]
    assert {i["name"] for i in items} == {"reverse"} and {i["state"] for i in items} == {"SUCCESS"}
    stats = taskline("stats", "--json", user=None)  # public routes: no credentials needed
    assert stats.returncode == 0, stats.stderr
    figures = json.loads(stats.stdout)
    assert len(figures["cpu"]["per_core"]) >= 1 and figures["memory"]["virtual"]["total"] > 0
    assert any(p["mountpoint"] == "/" for p in figures["partitions"])
    table = taskline("list", "--limit", "2")
    assert table.returncode == 0 and table.stdout.split()[:3] == ["ID", "NAME", "STATE"]


def test_list_searches_several_states_names_and_an_owner(
    taskline: Run, api: httpx.Client, stack: Stack
) -> None:
    with stack.client("bob") as bob:
        reversed_ = submit(bob, "reverse", {"text": "searched"})
        pi = submit(bob, "leibniz_pi", {"digits": 3})
        wait_done(bob, reversed_["id"])
        wait_done(bob, pi["id"])
    args = ["--name", "reverse", "--name", "leibniz_pi", "--state", "success", "--state", "failure"]
    listed = taskline("--json", "list", *args, "--owner", "bob", "--limit", "500")
    assert listed.returncode == 0, listed.stderr
    items = json.loads(listed.stdout)["items"]
    assert {reversed_["id"], pi["id"]} <= {i["id"] for i in items}
    assert {i["owner"] for i in items} == {"bob"}
    assert {i["state"] for i in items} <= {"SUCCESS", "FAILURE"}
    refused = taskline("list", "--owner", "bob", user="alice")
    assert refused.returncode == 3 and "owner" in refused.stderr
    found = taskline(
        "--json",
        "list",
        "--id-prefix",
        reversed_["id"],
        "--created-after",
        reversed_["queued_at"],
        "--finished-after",
        "0",
        "--finished-before",
        "9999999999",
    )
    assert found.returncode == 0, found.stderr
    assert [i["id"] for i in json.loads(found.stdout)["items"]] == [reversed_["id"]]
    later = taskline("--json", "list", "--id-prefix", reversed_["id"], "--created-before", "1")
    assert later.returncode == 0 and json.loads(later.stdout)["items"] == []
    bad = taskline("list", "--created-after", "soon")
    assert bad.returncode == 3 and "ISO-8601" in bad.stderr
    by_text = taskline("--json", "list", "--param", "text=searched", "--owner", "bob")
    assert by_text.returncode == 0, by_text.stderr
    assert reversed_["id"] in [i["id"] for i in json.loads(by_text.stdout)["items"]]
    assert taskline("list", "--param", "searched").returncode != 0


def test_workers_shows_the_active_worker_its_task_and_its_host(
    taskline: Run, api: httpx.Client, stack: Stack
) -> None:
    busy = submit(api, "reverse", {"text": "busy"}, delay_seconds=3)
    wait_state(api, busy["id"], {"STARTED", "PROGRESS"})

    def reported() -> dict | None:
        found = taskline("workers", "--json")
        assert found.returncode == 0, found.stderr
        answer = json.loads(found.stdout)
        return answer if [w["task_id"] for w in answer["workers"]] == [busy["id"]] else None

    (worker,) = wait_until(reported, 10, 0.2)["workers"]
    assert worker["active"] and worker["queue"] == stack.settings.queue
    table = taskline("workers")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if worker["node"] in line)
    assert "active" in row and busy["id"] in row and str(worker["pid"]) in row
    refused = taskline("workers", user=None)
    assert refused.returncode == 3 and "401" in refused.stderr
    wait_done(api, busy["id"])


def test_waiting_task_is_reprioritised_postponed_brought_back_cancelled_and_deleted(
    taskline: Run, api: httpx.Client
) -> None:
    task = submit(api, "reverse", {"text": "ctl"}, not_before="2099-01-01T00:00:00Z")
    url = f"/tasks/{task['id']}"
    assert taskline("priority", task["id"], "8").returncode == 0
    assert api.get(url).json()["priority"] == 8
    moved = taskline("postpone", task["id"], "--until", "2098-06-01T12:00:00+02:00", "--json")
    assert moved.returncode == 0, moved.stderr
    assert json.loads(moved.stdout)["not_before"].startswith("2098-06-01T10:00:00")
    assert taskline("cancel", task["id"]).returncode == 0
    assert api.get(url).json()["state"] == "CANCELLED"
    assert taskline("delete", task["id"]).returncode == 0
    assert api.get(url).status_code == 404

    later = submit(api, "reverse", {"text": "now"}, not_before="2099-01-01T00:00:00Z")
    back = taskline("postpone", later["id"], "--now")
    assert back.returncode == 0, back.stderr
    assert wait_done(api, later["id"])["result"] == "won"


TERMINAL_TRICKS = (
    "\x1b[2J\x1b]0;pwned\x07\x1b]52;c;ZXZpbA==\x07\x1b]8;;http://example.invalid\x1b\\"
    "link\x1b]8;;\x1b\\\x9b31m\x08[bold red]loud[/bold red][link=http://example.invalid]x[/link]"
)
OBEYED = ("\x1b", "\x07", "\x9b", "\x08")


def test_a_result_and_params_reach_the_terminal_as_text_never_obeyed(
    taskline: Run, api: httpx.Client
) -> None:
    task = submit(api, "reverse", {"text": reverse_graphemes(TERMINAL_TRICKS)})
    assert wait_done(api, task["id"])["result"] == TERMINAL_TRICKS
    shown = {
        "status": taskline("status", task["id"]),
        "result": taskline("result", task["id"]),
        "list": taskline("list", "--name", "reverse", "--limit", "3"),
    }
    for command, done in shown.items():
        assert done.returncode == 0, (command, done.stderr)
        for sequence in OBEYED:
            assert sequence not in done.stdout + done.stderr, (command, sequence, done.stdout)
    for command in ("status", "result"):  # the markup shown as it came, escapes made visible
        assert "[bold red]loud[/bold red][link=http://example.invalid]x[/link]" in (
            shown[command].stdout.replace("\n", "")
        )
        assert "\\x1b]52;c;ZXZpbA==" in shown[command].stdout
    as_json = taskline("result", task["id"], "--json")  # exact, with every control escaped
    assert json.loads(as_json.stdout)["result"] == TERMINAL_TRICKS
    assert not any(sequence in as_json.stdout for sequence in OBEYED)


def test_login_keeps_a_private_token_that_later_commands_use(
    taskline: Run, stack: Stack, config: Path
) -> None:
    env = cli_env(stack, config, user=None)
    login = taskline("login", "--user", "alice", "--password", PASSWORDS["alice"], env=env)
    assert login.returncode == 0, login.stderr
    token_file = config / "taskline" / "token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert json.loads(token_file.read_text())["url"] == stack.url
    # No URL and no credentials: both come from what login kept.
    del env["TASKLINE_URL"]
    created = taskline("submit", "reverse", "-p", "text=mine", "--json", env=env)
    assert created.returncode == 0, created.stderr
    assert json.loads(created.stdout)["owner"] == "alice"
    listed = json.loads(taskline("list", "--json", env=env).stdout)["items"]
    assert listed and {t["owner"] for t in listed} == {"alice"}  # a user sees only their own
    assert taskline("logout", env=env).returncode == 0
    assert not token_file.exists()
    refused = taskline("list", user=None)
    assert refused.returncode == 3 and "401" in refused.stderr


def test_usage_errors_exit_2_and_send_nothing(taskline: Run, api: httpx.Client) -> None:
    before = newest_id(api)
    for args in (
        ["submit", "reverse", "--param", "text"],
        ["submit", "reverse", "--param", "=x"],
        ["submit", "reverse", "-p", "text=x", "--not-before", "soon"],
        ["submit", "reverse", "--priority", "12"],
        ["priority", UNKNOWN_ID, "42"],
        ["postpone", UNKNOWN_ID],
        ["frobnicate"],
    ):
        done = taskline(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
    assert newest_id(api) == before


def test_refusals_and_connection_failures_exit_3_with_the_detail(taskline: Run) -> None:
    unknown = taskline("status", UNKNOWN_ID)
    assert unknown.returncode == 3
    assert unknown.stderr.strip() == f"error: HTTP 404 Not Found: task {UNKNOWN_ID} not found"
    as_json = json.loads(taskline("cancel", UNKNOWN_ID, "--json").stderr)
    assert as_json["status"] == 404 and as_json["exit_code"] == 3
    bad = taskline("submit", "leibniz_pi", "-p", "digits=0")
    assert bad.returncode == 3 and "422" in bad.stderr and "digits" in bad.stderr
    # A token, not a password: failed password checks would count towards a sign-in lockout.
    wrong = taskline("list", "--token", "not-a-token")
    assert wrong.returncode == 3 and "HTTP 401 Unauthorized: " in wrong.stderr
    nowhere = f"http://127.0.0.1:{free_port()}"
    down = taskline("--url", nowhere, "status", UNKNOWN_ID)
    assert down.returncode == 3 and f"cannot reach {nowhere}" in down.stderr
    for done in (unknown, bad, wrong, down):
        assert "Traceback" not in done.stderr and done.stdout == ""


def test_watch_shows_the_line_live_and_stops_on_ctrl_c(
    spawn: Callable[..., Running], api: httpx.Client
) -> None:
    as_json, plain = spawn("watch", "--json"), spawn("watch")
    # A watcher is subscribed once it has shown the snapshot.
    wait_until(lambda: as_json.stdout.lines and as_json.stdout.json()[0]["event"] == "snapshot", 30)
    wait_until(lambda: plain.stdout.lines and plain.stdout.lines[0].startswith("now:"), 30)
    task = submit(api, "reverse", {"text": "watched"}, delay_seconds=0.5)

    def events_of_task() -> dict[str, dict]:
        """The `task` events of the submitted task seen so far, by kind."""
        return {
            e["data"]["kind"]: e["data"]
            for e in as_json.stdout.json()
            if e["event"] == "task" and e["data"]["id"] == task["id"]
        }

    seen = wait_until(
        lambda: {"started", "ended"} <= events_of_task().keys() and events_of_task(), 30
    )
    assert seen["ended"]["state"] == "SUCCESS" and seen["started"]["name"] == "reverse"
    assert seen["started"]["owner"] == "admin" and seen["started"]["attempts"] >= 1
    started = re.compile(rf"\d\d:\d\d:\d\d started +{task['id'][:8]}… reverse \(admin\)")
    wait_until(lambda: any(started.fullmatch(line.strip()) for line in plain.stdout.lines), 30)
    for watcher in (as_json, plain):
        watcher.proc.send_signal(signal.SIGINT)
        assert watcher.wait(10) == 0


class Hostile(BaseHTTPRequestHandler):
    """A server that is not a good Taskline: every request gets the server's one answer."""

    server: "HostileServer"

    def answer(self) -> None:
        self.rfile.read(int(self.headers.get("content-length") or 0))
        status, kind, body = self.server.answer
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PATCH = do_DELETE = answer  # noqa: N815 (http.server's names)

    def log_message(self, *args: object) -> None:
        """Quiet: the test reads the CLI's output, not the server's."""


class HostileServer(ThreadingHTTPServer):
    answer: tuple[int, str, bytes] = (200, "application/json", b"{}")


@pytest.fixture
def hostile(tmp_path: Path) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """Run `taskline` against a local server answering what the test says (on a free port,
    shut down after): hostile((200, "text/html", b"<html>"), "status", "x")."""
    server = HostileServer(("127.0.0.1", 0), Hostile)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLINE_")}
    env.update(
        TASKLINE_URL=f"http://127.0.0.1:{server.server_address[1]}",
        TASKLINE_TOKEN="t",
        XDG_CONFIG_HOME=str(tmp_path / "config"),
    )

    def run(answer: tuple[int, str, bytes], *args: str) -> subprocess.CompletedProcess[str]:
        server.answer = answer
        return subprocess.run(
            [str(TASKLINE), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,  # a CLI that loops forever fails here
        )

    try:
        yield run
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


JSON = "application/json"
WRONG_TYPES = json.dumps(
    {"id": 5, "name": None, "state": 7, "progress": "x", "items": "no", "access_token": 5}
).encode()
BAD_ANSWERS = {
    "html": (200, "text/html", b"<html>hi</html>"),
    "array": (200, JSON, b"[1,2]"),
    "null": (200, JSON, b"null"),
    "202 without state": (202, JSON, b'{"nostate":1}'),
    "wrong types": (200, JSON, WRONG_TYPES),
}
COMMANDS = (
    ["status", UNKNOWN_ID],
    ["result", UNKNOWN_ID],
    ["list", "--limit", "5"],
    ["submit", "reverse", "-p", "text=a"],
    ["cancel", UNKNOWN_ID],
    ["priority", UNKNOWN_ID, "3"],
    ["postpone", UNKNOWN_ID, "--now"],
    ["stats"],
    ["login", "--user", "a", "--password", "b"],
)


@pytest.mark.parametrize("answer", BAD_ANSWERS.values(), ids=BAD_ANSWERS.keys())
def test_an_answer_that_is_not_the_apis_exits_3_with_a_message(
    hostile: Callable[..., subprocess.CompletedProcess[str]], answer: tuple[int, str, bytes]
) -> None:
    for args in COMMANDS:
        done = hostile(answer, *args)
        assert done.returncode == 3, (args, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == "", (args, done.stderr)
        assert done.stderr.startswith("error: unexpected answer from the server"), done.stderr
    as_json = hostile(answer, "status", UNKNOWN_ID, "--json")
    error = json.loads(as_json.stderr)
    assert as_json.returncode == error["exit_code"] == 3 and error["status"] == answer[0]
    assert error["error"].startswith("unexpected answer from the server")


@pytest.mark.parametrize(
    "detail",
    [[{"msg": "x", "loc": 5}], [{"msg": None, "loc": [None, {"a": 1}]}], [], {"a": [1]}, 7],
)
def test_any_refusal_detail_reads_as_a_message(
    hostile: Callable[..., subprocess.CompletedProcess[str]], detail: object
) -> None:
    answer = (422, JSON, json.dumps({"detail": detail}).encode())
    for args in (["status", UNKNOWN_ID], ["submit", "reverse", "-p", "text=a"], ["stats"]):
        done = hostile(answer, *args)
        assert done.returncode == 3, (args, done.stderr)
        assert done.stderr.startswith("error: HTTP 422 Unprocessable"), done.stderr
        assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "answer",
    [(200, "text/html", b"<html>hi</html>"), (200, JSON, b'{"items": []}')],
    ids=["html", "json"],
)
def test_watch_ends_at_once_when_the_answer_is_not_an_event_stream(
    hostile: Callable[..., subprocess.CompletedProcess[str]], answer: tuple[int, str, bytes]
) -> None:
    for args in (["watch"], ["watch", "--json"]):
        done = hostile(answer, *args)  # before the fix it reconnected forever: a timeout
        assert done.returncode == 3, done.stderr
        assert "not an event stream" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "body",
    [b"", b"event: snapshot\nid: 1-0\ndata: not json\n\n", b"event: task\ndata: {}\n\n"],
    ids=["ends without events", "not json", "task without id"],
)
def test_watch_gives_up_on_an_event_stream_that_brings_no_good_event(
    hostile: Callable[..., subprocess.CompletedProcess[str]], body: bytes
) -> None:
    done = hostile((200, "text/event-stream", body), "watch")
    assert done.returncode == 3, done.stderr
    assert "unexpected event stream from the server" in done.stderr
    assert "Traceback" not in done.stderr
