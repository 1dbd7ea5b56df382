"""`watch`: the whole line, live, from `GET /events`: a line per task event, and the running
task's progress in a bar below them."""

from typing import Any
from urllib.parse import urlencode

import httpx
from rich.console import Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from taskline.cli.answers import LINE_EVENTS
from taskline.cli.output import Output
from taskline.cli.stream import Event, events
from taskline.cli.terminal import clean
from taskline.cli.views import clock, progress_value, short, state_text


def watch(client: httpx.Client, out: Output, line: str | None = None) -> None:
    """Print the events of every line (or of `line`) until interrupted (or until the stream
    cannot be resumed)."""
    path = "/events" if line is None else f"/events?{urlencode({'line': line})}"
    if out.json:
        for event in events(client, path, LINE_EVENTS):
            out.document(event.as_json())
        return
    board = Board()
    with Live(board.renderable(), console=out.stdout, auto_refresh=True, transient=True) as live:
        for event in events(client, path, LINE_EVENTS):
            for printed in board.apply(event):
                live.console.print(printed)
            live.update(board.renderable())


def event_line(data: dict[str, Any]) -> Text:
    """`12:00:01 started 6f1c1c1e… leibniz_pi (alice)` and what the event adds."""
    line = Text(f"{clean(clock(data.get('at')), one_line=True)} ")
    line.append(clean(f"{data.get('kind', ''):<10}", one_line=True), style="bold")
    who = f" {short(data.get('id', ''))} {data.get('name', '')} ({data.get('owner', '')})"
    line.append(clean(who, one_line=True))
    if data.get("kind") == "ended":
        line.append(" ")
        line.append_text(state_text(data.get("state", "")))
    if error := data.get("error"):
        why = f" {error.get('type', '')}: {error.get('message', '')}"
        line.append(clean(why, one_line=True), style="red")
    if (attempts := data.get("attempts") or 0) > 1:
        line.append(f" (attempt {attempts})")
    return line


class Board:
    """What the bottom of the screen shows: the running task's bar and the line's depth."""

    def __init__(self) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TextColumn("{task.percentage:>5.1f} %"),
            TimeElapsedColumn(),
            TextColumn("{task.fields[value]}", markup=False),
        )
        self.rows: dict[str, TaskID] = {}
        self.depth = 0
        self.depths: dict[str, int] = {}  # by line, once a line event told it

    def renderable(self) -> Group:
        """The live footer: running bars, then how many wait (in each line, once told)."""
        if len(self.depths) > 1:
            waiting = ", ".join(f"{n} in {line}" for line, n in self.depths.items())
            return Group(self.progress, Text(clean(f"waiting: {waiting}"), style="dim"))
        return Group(self.progress, Text(f"{self.depth} waiting", style="dim"))

    def apply(self, event: Event) -> list[Text]:
        """Take in one event; the lines to print for it (progress prints none)."""
        data = event.data
        if event.kind == "snapshot":
            for task in data.get("running", []):
                self.run(task)
            self.depth = data.get("depth", 0)
            running = ", ".join(f"{short(t['id'])} {t['name']}" for t in data.get("running", []))
            postponed = len(data.get("postponed", []))
            summary = f"now: {self.depth} waiting, {postponed} postponed, running: {running or '-'}"
            return [Text(clean(summary, one_line=True), style="dim")]
        if event.kind == "line":
            self.depth = data.get("depth", self.depth)
            if data.get("line"):
                self.depths[data["line"]] = self.depth
            return []
        if event.kind != "task":
            return []
        kind = data.get("kind")
        if kind in ("started", "progress"):
            self.run(data)
        elif kind in ("ended", "requeued", "retrying", "deleted") and data.get("id") in self.rows:
            self.progress.remove_task(self.rows.pop(data["id"]))
        return [] if kind == "progress" else [event_line(data)]

    def run(self, task: dict[str, Any]) -> None:
        """Show (or move) the bar of a running task."""
        if task["id"] not in self.rows:
            who = f"{short(task['id'])} {task.get('name', '')} ({task.get('owner', '')})"
            description = clean(who, one_line=True)
            self.rows[task["id"]] = self.progress.add_task(description, total=100, value="")
        progress = task.get("progress") or {}
        self.progress.update(
            self.rows[task["id"]],
            completed=progress.get("percent", 0),
            value=progress_value(task),
        )
