"""How tasks read on a terminal: one line, a detail view, a table, a result.

Every text from the server goes in cleaned and as a `Text` (cli.terminal): shown, never obeyed.
"""

import json
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from taskline.cli.terminal import clean, text

STATE_STYLES = {
    "QUEUED": "cyan",
    "SCHEDULED": "blue",
    "STARTED": "yellow",
    "PROGRESS": "yellow",
    "SUCCESS": "green",
    "FAILURE": "red",
    "CANCELLED": "magenta",
}


def short(task_id: str) -> str:
    """The first 8 characters of an id, as the line-wide views show it."""
    return f"{task_id[:8]}…" if len(task_id) > 8 else task_id


def clock(moment: str | None) -> str:
    """An ISO-8601 moment as local HH:MM:SS (the text itself if it does not parse)."""
    if not moment:
        return "--:--:--"
    try:
        return datetime.fromisoformat(moment).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return moment


def local(moment: str | None) -> str:
    """An ISO-8601 moment as a local date and time, to the second."""
    if not moment:
        return ""
    try:
        return datetime.fromisoformat(moment).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return moment


def when(moment: str | None) -> str:
    """A moment in a table cell: the local time today, else the date and minute."""
    if not moment:
        return ""
    try:
        then = datetime.fromisoformat(moment).astimezone()
    except ValueError:
        return moment
    today = then.date() == datetime.now().astimezone().date()
    return then.strftime("%H:%M:%S" if today else "%Y-%m-%d %H:%M")


def state_text(state: str) -> Text:
    """A state in its colour, so outcomes stand out in a list."""
    return text(state, STATE_STYLES.get(state, ""))


def value_text(value: Any) -> str:
    """A result or param value: text as it is, anything else as indented JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, indent=2)


def where(task: dict[str, Any]) -> str:
    """Where a task stands: its place in line, its time, its progress or its outcome (cleaned)."""
    return clean(_where(task), one_line=True)


def _where(task: dict[str, Any]) -> str:
    state = task.get("state", "")
    if state == "QUEUED" and task.get("queue_position"):
        return f"position {task['queue_position']}"
    if state == "SCHEDULED":
        return f"until {local(task.get('not_before'))}"
    progress = task.get("progress") or {}
    if state in ("STARTED", "PROGRESS") and progress:
        return f"{progress.get('percent', 0):.1f} %"
    error = task.get("error") or {}
    if error:
        return f"{error.get('type', '')}: {error.get('message', '')}"
    return ""


def summary(task: dict[str, Any]) -> Text:
    """`<id> <name> <STATE> <where>` on one line."""
    line = text(f"{task['id']}  {task.get('name', '')}  ")
    line.append_text(state_text(task.get("state", "")))
    if extra := where(task):
        line.append(f"  {extra}")
    return line


def detail(task: dict[str, Any]) -> Table:
    """Every field of a task worth reading, one per row."""
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column(overflow="fold")
    rows: list[tuple[str, str | Text]] = [  # str: cleaned below
        ("id", task["id"]),
        ("name", task.get("name", "")),
        ("state", state_text(task.get("state", ""))),
        ("owner", task.get("owner", "")),
        ("priority", str(task.get("priority", ""))),
        ("params", json.dumps(task.get("params", {}), ensure_ascii=False)),
        ("queued", local(task.get("queued_at"))),
        ("not before", local(task.get("not_before"))),
        ("position", str(task.get("queue_position") or "")),
        ("started", local(task.get("started_at"))),
        ("expected start", local(task.get("expected_start")) if not task.get("started_at") else ""),
        ("expected end", local(task.get("expected_end"))),
        ("finished", local(task.get("finished_at"))),
        ("attempts", str(task.get("attempts") or "")),
        ("worker", task.get("worker") or ""),
        ("retry of", task.get("retry_of") or ""),
        ("retried by", task.get("retried_by") or ""),
        ("clone of", task.get("clone_of") or ""),
    ]
    if progress := task.get("progress"):
        rows.append(("progress", f"{progress.get('percent', 0):.1f} %  {progress_value(task)}"))
    if task.get("result") is not None:
        rows.append(("result", value_text(task["result"])))
    if error := task.get("error"):
        rows.append(("error", f"{error.get('type', '')}: {error.get('message', '')}"))
        if isinstance(trace := error.get("traceback"), str):  # an admin's read
            rows.append(("traceback", trace.rstrip("\n")))
    for failed in task.get("errors") or []:  # earlier attempts, retried
        why = f"{failed.get('type', '')}: {failed.get('message', '')}"
        at = local(failed.get("at"))
        rows.append(("retried", f"attempt {failed.get('attempt', '')} ({at}) {why}"))
    for label, value in rows:
        if value:
            table.add_row(label, value if isinstance(value, Text) else text(value, one_line=False))
    return table


def progress_value(task: dict[str, Any]) -> str:
    """The intermediate value a running task reports (pi's estimate so far, …), on one line."""
    value = (task.get("progress") or {}).get("intermediate")
    return "" if value is None else clean(value_text(value), one_line=True)


def listing(tasks: list[dict[str, Any]]) -> Table:
    """Tasks as a table, newest first as the API lists them."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("ID", no_wrap=True, min_width=36)
    table.add_column("NAME", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("OWNER")
    table.add_column("LINE", no_wrap=True)
    table.add_column("PRI", justify="right")
    table.add_column("QUEUED", no_wrap=True)
    table.add_column("WHERE")
    for task in tasks:
        table.add_row(
            text(task["id"]),
            text(task.get("name", "")),
            state_text(task.get("state", "")),
            text(task.get("owner", "")),
            text(task.get("line") or ""),
            text(task.get("priority", "")),
            text(when(task.get("queued_at"))),
            text(where(task)),
        )
    return table


def task_types(types: list[dict[str, Any]]) -> Table:
    """The loaded task types: name, params (required ones starred), description."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("NAME", no_wrap=True)
    table.add_column("PARAMS")
    table.add_column("DESCRIPTION")
    for kind in types:
        schema = kind.get("params_schema") or {}
        required = set(schema.get("required") or [])
        fields = [f"{n}*" if n in required else str(n) for n in schema.get("properties") or {}]
        table.add_row(
            text(kind["name"]), text(", ".join(fields)), text(kind.get("description") or "")
        )
    return table


def history_view(entries: list[dict[str, Any]]) -> Table:
    """A task's changes, oldest first: when (local time), what, and what else the entry says."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for heading in ("WHEN", "CHANGE", "DETAILS"):
        table.add_column(heading, no_wrap=heading != "DETAILS")
    for entry in entries:
        details = {k: v for k, v in entry.items() if k not in ("at", "change")}
        table.add_row(
            text(local(entry.get("at"))),
            text(value_text(entry.get("change"))),
            text(", ".join(f"{k}={value_text(v)}" for k, v in details.items())),
        )
    return table


def lines_view(lines: list[dict[str, Any]]) -> Table:
    """Each line: its queue, how many wait and are postponed, what runs (and when it should
    end), what comes next (and when each should start)."""
    table = Table(box=None, header_style="bold", pad_edge=False)
    for heading in ("LINE", "QUEUE", "WAITING", "POSTPONED", "WORKERS", "RUNNING", "NEXT"):
        table.add_column(heading, no_wrap=heading not in ("RUNNING", "NEXT"))
    for line in lines:
        expected = {e["id"]: e for e in line.get("expected") or []}
        running = ", ".join(_named(t, expected, "expected_end") for t in line["running"])
        upcoming = ", ".join(_named(t, expected, "expected_start") for t in line["next"])
        table.add_row(
            text(line.get("line", "")),
            text(line.get("queue", "")),
            text(line["depth"]),
            text(line.get("scheduled", 0)),
            text("-" if line.get("consumers") is None else line["consumers"]),
            text(running or "-"),
            text(upcoming or "-"),
        )
    return table


def _named(task: dict[str, Any], expected: dict[str, dict[str, Any]], field: str) -> str:
    """`id name ~HH:MM:SS`: when a running task should end, or a waiting one start."""
    moment = expected.get(task["id"], {}).get(field)
    return f"{short(task['id'])} {task.get('name', '')}" + (f" ~{clock(moment)}" if moment else "")
