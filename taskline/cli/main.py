"""The `taskline` command: its subcommands, their options, and how each one ends."""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Annotated, Any

import httpx
import typer

from taskline.cli import bulk, config
from taskline.cli.answers import (
    ETA,
    HISTORY,
    LINES,
    PAGE,
    QUEUE,
    RESULT,
    TASK,
    TASK_TYPES,
    TOKEN,
    WORKERS,
    decoded,
)
from taskline.cli.connection import Options, call, open_client
from taskline.cli.exits import EXIT_CODES_HELP, CliError, ExitCode, for_state
from taskline.cli.follow import follow
from taskline.cli.output import Output
from taskline.cli.params import parse_moment, parse_params
from taskline.cli.stats import gather, render
from taskline.cli.terminal import text
from taskline.cli.views import (
    detail,
    history_view,
    lines_view,
    listing,
    summary,
    task_types,
    value_text,
)
from taskline.cli.watch import watch as watch_line
from taskline.cli.workers import render as render_workers

MAX_PAGE = 500  # the API's largest page

app = typer.Typer(
    name="taskline",
    epilog="[bold]Exit codes[/bold]\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)

CONNECTION = "Connection"
Url = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="API base URL (env TASKLINE_URL; else the one of `login`; else "
        "http://127.0.0.1:8000).",
        rich_help_panel=CONNECTION,
        show_default=False,
    ),
]
Token = Annotated[
    str | None,
    typer.Option(
        "--token",
        help="Bearer token (env TASKLINE_TOKEN; else the one `login` stored).",
        rich_help_panel=CONNECTION,
        show_default=False,
    ),
]
User = Annotated[
    str | None,
    typer.Option(
        "--user",
        "-u",
        help="User for HTTP Basic (env TASKLINE_USER).",
        rich_help_panel=CONNECTION,
        show_default=False,
    ),
]
Password = Annotated[
    str | None,
    typer.Option(
        "--password",
        help="Password for HTTP Basic (env TASKLINE_PASSWORD; asked on a terminal).",
        rich_help_panel=CONNECTION,
        show_default=False,
    ),
]
Json = Annotated[
    bool,
    typer.Option(
        "--json",
        help="Machine-readable output: one JSON document (one per line for streams).",
    ),
]
TaskId = Annotated[str, typer.Argument(help="The task's id.", show_default=False)]
TaskIds = Annotated[
    list[str] | None,
    typer.Argument(help="The task's id, or several (a bulk action).", show_default=False),
]
BULK = "Bulk, by filter (instead of ids)"
FILTERS = "--state, --name, --line"
FilterState = Annotated[
    str | None,
    typer.Option(
        "--state",
        help="Every task in this state (QUEUED, SCHEDULED, STARTED, FAILURE, …).",
        rich_help_panel=BULK,
        show_default=False,
    ),
]
FilterName = Annotated[
    str | None,
    typer.Option(
        "--name", help="Every task of this type.", rich_help_panel=BULK, show_default=False
    ),
]
FilterLine = Annotated[
    str | None,
    typer.Option(
        "--line",
        help="Every task on this line (not with --name).",
        rich_help_panel=BULK,
        show_default=False,
    ),
]
Params = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        "-p",
        metavar="KEY=VALUE",
        help="A param; VALUE is JSON when it parses (digits=7 is 7), else text "
        "(text=hello). Repeat for more.",
        show_default=False,
    ),
]
Priority = Annotated[
    int | None,
    typer.Option(min=0, max=9, help="0–9, higher runs first (default 5).", show_default=False),
]
Delay = Annotated[
    float | None,
    typer.Option(
        min=0, help="Spread the run over this many seconds (delay_seconds).", show_default=False
    ),
]
NotBefore = Annotated[
    str | None,
    typer.Option(
        "--not-before",
        metavar="ISO",
        help="Postpone until then (ISO-8601; without an offset it is local time).",
        show_default=False,
    ),
]
Wait = Annotated[
    bool,
    typer.Option(
        "--wait",
        help="Follow the task to its end with a progress bar, then print its result.",
    ),
]


@dataclass(frozen=True, slots=True)
class Globals:
    """The flags given before the command name."""

    options: Options = field(default_factory=Options)
    json: bool = False


@dataclass(frozen=True, slots=True)
class Session:
    """What a command works with: an HTTP client of the API and its output streams."""

    client: httpx.Client
    out: Output


@contextmanager
def session(
    ctx: typer.Context, options: Options, as_json: bool, anonymous: bool = False
) -> Iterator[Session]:
    """Open the client; turn a CliError or Ctrl-C into its message and exit code."""
    outer: Globals = ctx.find_root().obj or Globals()
    out = Output(json=as_json or outer.json)
    try:
        with open_client(options.over(outer.options), anonymous) as client:
            yield Session(client, out)
    except CliError as exc:
        out.error(exc)
        raise typer.Exit(exc.code) from None
    except KeyboardInterrupt:
        out.note("interrupted")
        raise typer.Exit(ExitCode.INTERRUPTED) from None


@app.callback()
def taskline(
    ctx: typer.Context,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Submit, follow and control Taskline tasks over the HTTP API.

    Credentials: --token, or --user and --password (HTTP Basic), or the token of `taskline
    login`. Connection options and --json go before or after the command name.
    """
    ctx.obj = Globals(Options(url, token, user, password), as_json)


@app.command()
def submit(
    ctx: typer.Context,
    name: Annotated[
        str,
        typer.Argument(help="Task type: leibniz_pi, reverse, generate_serials, …"),
    ],
    param: Params = None,
    priority: Priority = None,
    delay: Delay = None,
    not_before: NotBefore = None,
    wait: Wait = False,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Submit a task; print it (id, state, position), or with --wait follow it to its result."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        body: dict[str, Any] = {"name": name, "params": parse_params(param or [])}
        body |= scheduling(priority, delay, not_before)
        task = decoded(call(s.client, "POST", "/tasks", json=body), TASK)
        code = accepted(s, task, wait)
    raise typer.Exit(code)


@app.command()
def retry(
    ctx: typer.Context,
    task_ids: TaskIds = None,
    state: FilterState = None,
    name: FilterName = None,
    line: FilterLine = None,
    wait: Wait = False,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Run a task that ended FAILURE or CANCELLED again, as a new task linked to it (a task
    is retried once); print the new task, or with --wait follow it to its result. Several
    ids, or a filter, retry each and print a report (exit 7 if any was refused)."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        if (task_id := single(task_ids, state, name, line)) is None:
            if wait:
                raise CliError("--wait follows one task: give one id", ExitCode.USAGE)
            code = bulk_action(s, "retry", task_ids, state, name, line)
        else:
            task = decoded(call(s.client, "POST", f"/tasks/{task_id}/retry"), TASK)
            code = accepted(s, task, wait)
    raise typer.Exit(code)


def single(
    task_ids: list[str] | None, state: str | None, name: str | None, line: str | None
) -> str | None:
    """The one id of a single action, or None for a bulk one (several ids, or a filter);
    a usage error for neither, or both."""
    ids, filtered = task_ids or [], any((state, name, line))
    if ids and filtered:
        raise CliError(
            "give task ids or a filter (--state, --name, --line), not both", ExitCode.USAGE
        )
    if not ids and not filtered:
        raise CliError(
            "give a task id, several, or a filter (--state, --name, --line)", ExitCode.USAGE
        )
    return ids[0] if len(ids) == 1 else None


def bulk_action(
    s: Session,
    action: str,
    task_ids: list[str] | None,
    state: str | None,
    name: str | None,
    line: str | None,
) -> ExitCode:
    """Send a bulk action, print its report; REFUSED if any task was refused."""
    query = {
        k: v for k, v in (("state", state and state.upper()), ("name", name), ("line", line)) if v
    }
    results = bulk.act(s.client, action, task_ids or [], query)
    if s.out.json:
        s.out.document({"results": results})
    elif results:
        s.out.show(bulk.report(results))
    else:
        s.out.note("no tasks")
    return bulk.exit_code(results)


@app.command()
def clone(
    ctx: typer.Context,
    task_id: TaskId,
    param: Params = None,
    priority: Priority = None,
    delay: Delay = None,
    not_before: NotBefore = None,
    wait: Wait = False,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Submit a new task from any task's type and params, changed by --param (KEY=null puts
    a param back to its default); print it, or with --wait follow it to its result."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        body: dict[str, Any] = {"params": parse_params(param or [])}
        body |= scheduling(priority, delay, not_before)
        task = decoded(call(s.client, "POST", f"/tasks/{task_id}/clone", json=body), TASK)
        code = accepted(s, task, wait)
    raise typer.Exit(code)


def scheduling(priority: int | None, delay: float | None, not_before: str | None) -> dict[str, Any]:
    """The body's priority, delay_seconds and not_before, those given."""
    body: dict[str, Any] = {}
    if priority is not None:
        body["priority"] = priority
    if delay is not None:
        body["delay_seconds"] = delay
    if not_before is not None:
        body["not_before"] = parse_moment(not_before, "--not-before")
    return body


def accepted(s: Session, task: dict[str, Any], wait: bool) -> ExitCode:
    """Print a new task; with `wait`, follow it to its end: how the command exits."""
    if not wait:
        s.out.either(task, summary(task))
        return ExitCode.OK
    if s.out.json:
        s.out.document({"event": "created", "id": None, "data": task})
    else:
        s.out.note(f"submitted {task['id']}")
    try:
        final = follow(s.client, task, s.out)
    except KeyboardInterrupt:
        raise CliError(
            f"stopped following task {task['id']}; it goes on (taskline status {task['id']})",
            ExitCode.INTERRUPTED,
        ) from None
    return ended(final, s.out)


def ended(task: dict[str, Any], out: Output) -> ExitCode:
    """Report a followed task's end: its result on stdout, or how it failed on stderr."""
    if out.json:
        out.document({"event": "result", "id": None, "data": task})
    elif task["state"] == "SUCCESS":
        out.text(value_text(task.get("result")))
    else:
        error = task.get("error") or {}
        reason = f": {error.get('type', '')}: {error.get('message', '')}" if error else ""
        out.note(f"task {task['id']} ended in {task['state']}{reason}")
    return for_state(task["state"])


@app.command()
def status(
    ctx: typer.Context,
    task_id: TaskId,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Show a task: state, progress, place in line, when it should start and end (a waiting
    or running one), result or error."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        task = decoded(call(s.client, "GET", f"/tasks/{task_id}"), TASK)
        if task["state"] not in ("SUCCESS", "FAILURE", "CANCELLED"):
            eta = decoded(call(s.client, "GET", f"/tasks/{task_id}/eta"), ETA)
            task |= {k: eta.get(k) for k in ("expected_start", "expected_end")}
        s.out.either(task, detail(task))


@app.command()
def result(
    ctx: typer.Context,
    task_id: TaskId,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Print a finished task's result (exit 4 or 5 if it failed or was cancelled, 6 if it has
    not ended)."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        try:
            response = call(s.client, "GET", f"/tasks/{task_id}/result")
        except CliError as exc:
            state = exc.detail.get("state") if isinstance(exc.detail, dict) else None
            if exc.status == 409 and state in ("FAILURE", "CANCELLED"):
                raise CliError(exc.message, for_state(state), exc.detail, exc.status) from None
            raise
        body = decoded(response, TASK if response.status_code == 202 else RESULT)
        if response.status_code == 202:
            s.out.either(body, summary(body))
            raise CliError(f"task {task_id} has not ended: {body['state']}", ExitCode.UNFINISHED)
        s.out.either(body, text(value_text(body.get("result")), one_line=False))


@app.command()
def history(
    ctx: typer.Context,
    task_id: TaskId,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Show every change made to a task, oldest first: created, edited, postponed, started,
    ended, retried…"""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        entries = decoded(call(s.client, "GET", f"/tasks/{task_id}/history"), HISTORY)
        s.out.either(entries, history_view(entries))


_MOMENT_OPTION = typer.Option(
    help="ISO-8601 (UTC unless it says) or epoch seconds.", show_default=False
)


@app.command(name="list")
def list_tasks(
    ctx: typer.Context,
    state: Annotated[
        list[str] | None,
        typer.Option(
            help="QUEUED, SCHEDULED, STARTED, PROGRESS, SUCCESS, FAILURE or CANCELLED; "
            "repeat for any of several.",
            show_default=False,
        ),
    ] = None,
    name: Annotated[
        list[str] | None,
        typer.Option(help="Task type; repeat for any of several.", show_default=False),
    ] = None,
    owner: Annotated[
        str | None,
        typer.Option(help="The tasks of this user (an admin's or a viewer's).", show_default=False),
    ] = None,
    line: Annotated[
        str | None, typer.Option(help="Line (not with --name).", show_default=False)
    ] = None,
    created_after: Annotated[str | None, _MOMENT_OPTION] = None,
    created_before: Annotated[str | None, _MOMENT_OPTION] = None,
    finished_after: Annotated[str | None, _MOMENT_OPTION] = None,
    finished_before: Annotated[str | None, _MOMENT_OPTION] = None,
    id_prefix: Annotated[
        str | None, typer.Option(help="Ids that start with this.", show_default=False)
    ] = None,
    param: Annotated[
        str | None,
        typer.Option(
            help="NAME=VALUE: a searchable param's value (exact).",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many tasks, newest first.")] = 50,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """List tasks, newest first, as a table; search by states, names, owner, line, creation
    and end times (at or after, before), id prefix and a searchable param's value."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        query: dict[str, str | list[str]] = {}
        if state:
            query["state"] = [one.upper() for one in state]
        if name:
            query["name"] = name
        if owner:
            query["owner"] = owner
        if line:
            query["line"] = line
        bounds = {
            "created_after": created_after,
            "created_before": created_before,
            "finished_after": finished_after,
            "finished_before": finished_before,
            "id_prefix": id_prefix,
        }
        query.update({field: value for field, value in bounds.items() if value})
        if param:
            field, equals, value = param.partition("=")
            if not equals or not field:
                raise typer.BadParameter("NAME=VALUE", param_hint="--param")
            query[f"param.{field}"] = value
        items: list[dict[str, Any]] = []
        cursor: str | None = None
        while len(items) < limit:
            query["limit"] = str(min(limit - len(items), MAX_PAGE))
            if cursor:
                query["cursor"] = cursor
            page = decoded(call(s.client, "GET", "/tasks", params=query), PAGE)
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                break
        if s.out.json:
            s.out.document({"items": items, "next_cursor": cursor})
        elif items:
            s.out.show(listing(items))
        else:
            s.out.note("no tasks")


@app.command()
def queue(
    ctx: typer.Context,
    line: Annotated[
        str | None, typer.Option(help="One line (default: every line).", show_default=False)
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Next tasks shown per line.")] = 10,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Show each line (or one): its queue, waiting and postponed tasks, workers, the running
    task and the next ones."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        query = {"limit": str(limit)}
        if line:
            found = [
                decoded(call(s.client, "GET", "/queue", params={**query, "line": line}), QUEUE)
            ]
        else:
            found = decoded(call(s.client, "GET", "/lines", params=query), LINES)["lines"]
        s.out.either({"lines": found}, lines_view(found))


@app.command()
def types(
    ctx: typer.Context,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """List the task types this deployment runs (required params starred); --json: schemas."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        found = decoded(call(s.client, "GET", "/task-types"), TASK_TYPES)
        s.out.either(found, task_types(found))


@app.command()
def cancel(
    ctx: typer.Context,
    task_ids: TaskIds = None,
    state: FilterState = None,
    name: FilterName = None,
    line: FilterLine = None,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Cancel a task: a waiting one never runs, a running one stops within a second. Several
    ids, or a filter, cancel each and print a report (exit 7 if any was refused)."""
    code = ExitCode.OK
    with session(ctx, Options(url, token, user, password), as_json) as s:
        if (task_id := single(task_ids, state, name, line)) is None:
            code = bulk_action(s, "cancel", task_ids, state, name, line)
        else:
            task = decoded(call(s.client, "POST", f"/tasks/{task_id}/cancel"), TASK)
            s.out.either(task, summary(task))
    raise typer.Exit(code)


@app.command()
def postpone(
    ctx: typer.Context,
    task_id: TaskId,
    until: Annotated[
        str | None,
        typer.Option(
            metavar="ISO",
            help="Run it no sooner than this (ISO-8601; without an offset it is local time).",
            show_default=False,
        ),
    ] = None,
    now: Annotated[bool, typer.Option("--now", help="Bring a postponed task back now.")] = False,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Postpone a waiting task (--until), or bring it back into line (--now)."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        if now == (until is not None):  # both, or neither
            raise CliError("postpone takes one of --until ISO and --now", ExitCode.USAGE)
        moment = None if now else parse_moment(until or "", "--until")
        answer = call(s.client, "PATCH", f"/tasks/{task_id}", json={"not_before": moment})
        task = decoded(answer, TASK)
        s.out.either(task, summary(task))


@app.command()
def priority(
    ctx: typer.Context,
    task_id: TaskId,
    level: Annotated[int, typer.Argument(min=0, max=9, help="0–9, higher runs first.")],
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Change a waiting task's priority (it moves in line)."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        answer = call(s.client, "PATCH", f"/tasks/{task_id}", json={"priority": level})
        task = decoded(answer, TASK)
        s.out.either(task, summary(task))


@app.command()
def delete(
    ctx: typer.Context,
    task_ids: TaskIds = None,
    state: FilterState = None,
    name: FilterName = None,
    line: FilterLine = None,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Forget a task that is not running: record, result, events and history. Several ids,
    or a filter, delete each and print a report (exit 7 if any was refused)."""
    code = ExitCode.OK
    with session(ctx, Options(url, token, user, password), as_json) as s:
        if (task_id := single(task_ids, state, name, line)) is None:
            code = bulk_action(s, "delete", task_ids, state, name, line)
        else:
            call(s.client, "DELETE", f"/tasks/{task_id}")
            if s.out.json:
                s.out.document({"id": task_id, "deleted": True})
            else:
                s.out.text(f"deleted {task_id}")
    raise typer.Exit(code)


@app.command()
def watch(
    ctx: typer.Context,
    line: Annotated[
        str | None, typer.Option(help="One line (default: every line).", show_default=False)
    ] = None,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Watch the lines (or one) live: a line per task event and the running tasks' progress
    (with --json one JSON object per event). Ctrl-C stops it (exit 0)."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        try:
            watch_line(s.client, s.out, line)
        except KeyboardInterrupt:
            return


@app.command()
def stats(
    ctx: typer.Context,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Show the API host's CPU per core, memory and disks (public: no sign-in needed)."""
    with session(ctx, Options(url), as_json, anonymous=True) as s:
        figures = gather(s.client)
        s.out.either(figures, render(figures))


@app.command()
def workers(
    ctx: typer.Context,
    line: Annotated[
        str | None, typer.Option(help="One line (default: every line).", show_default=False)
    ] = None,
    url: Url = None,
    token: Token = None,
    user: User = None,
    password: Password = None,
    as_json: Json = False,
) -> None:
    """Show the workers of each line (or of one): the active one, its standbys, what each
    runs and its host's load."""
    with session(ctx, Options(url, token, user, password), as_json) as s:
        params = {"line": line} if line else {}
        found = decoded(call(s.client, "GET", "/workers", params=params), WORKERS)
        s.out.either(found, render_workers(found))


@app.command()
def login(
    ctx: typer.Context,
    user: Annotated[
        str | None,
        typer.Option("--user", "-u", help="User name (asked if left out).", show_default=False),
    ] = None,
    password: Annotated[
        str | None,
        typer.Option(
            help="Password (asked if left out; TASKLINE_PASSWORD works too).", show_default=False
        ),
    ] = None,
    url: Url = None,
    as_json: Json = False,
) -> None:
    """Sign in: get a bearer token and keep it, with the URL, for the next commands
    ($XDG_CONFIG_HOME/taskline/token or ~/.config/taskline/token, mode 0600)."""
    with session(ctx, Options(url), as_json, anonymous=True) as s:
        outer: Globals = ctx.find_root().obj or Globals()
        user = user or outer.options.user or typer.prompt("user")
        password = (
            password
            or outer.options.password
            or os.environ.get("TASKLINE_PASSWORD")
            or typer.prompt("password", hide_input=True)
        )
        form = {"username": user, "password": password}
        token = decoded(call(s.client, "POST", "/auth/token", data=form), TOKEN)
        base = str(s.client.base_url).rstrip("/")
        path = config.save(config.StoredLogin(base, token["access_token"], user))
        if s.out.json:
            expires_in = token.get("expires_in")
            s.out.document(
                {"url": base, "user": user, "token_file": str(path), "expires_in": expires_in}
            )
        else:
            s.out.text(f"signed in to {base} as {user}; token kept in {path}")


@app.command()
def logout(
    ctx: typer.Context,
    as_json: Json = False,
) -> None:
    """Revoke the token `login` stored and forget it."""
    stored = config.load()
    with session(ctx, Options(stored.url if stored else None), as_json, anonymous=True) as s:
        if stored is None:
            if s.out.json:
                s.out.document({"signed_out": False})
            else:
                s.out.note("not signed in")
            return
        try:
            headers = {"Authorization": f"Bearer {stored.token}"}
            call(s.client, "DELETE", "/auth/token", headers=headers)
        except CliError as exc:
            if exc.status != 401:  # 401: the token had expired or was revoked already
                raise
        finally:
            config.forget()
        if s.out.json:
            s.out.document({"url": stored.url, "user": stored.user, "signed_out": True})
        else:
            s.out.text(f"signed out of {stored.url}")


def main() -> None:
    """The console script: the app, with any error that escaped a command shown, not raised."""
    try:
        app()
    except CliError as exc:
        Output().error(exc)
        sys.exit(exc.code)
    except httpx.RequestError as exc:
        Output().error(CliError(f"connection failed: {exc}", ExitCode.HTTP))
        sys.exit(ExitCode.HTTP)


if __name__ == "__main__":
    main()
