"""`submit --wait`: follow one task's own event stream to its end, with a progress bar."""

from typing import Any

import httpx
from rich.progress import (
    BarColumn,
    Progress,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

from taskline.cli.answers import CHANGE, TASK, decoded
from taskline.cli.connection import call
from taskline.cli.output import Output
from taskline.cli.stream import events
from taskline.cli.terminal import clean
from taskline.cli.views import progress_value, where

TERMINAL = frozenset({"SUCCESS", "FAILURE", "CANCELLED"})
RUNNING = frozenset({"STARTED", "PROGRESS"})


def follow(client: httpx.Client, task: dict[str, Any], out: Output) -> dict[str, Any]:
    """The task once it has ended (read again, result included), its events shown meanwhile:
    as JSON lines with --json, else as a bar on stderr with the intermediate value and the
    time since it started."""
    path = f"/tasks/{task['id']}"
    if out.json:
        for event in events(client, f"{path}/events", other=CHANGE):
            out.document(event.as_json())
            if event.data.get("state") in TERMINAL:
                break
    else:
        with Bar(out, task) as bar:
            for event in events(client, f"{path}/events", other=CHANGE):
                bar.update(event.data)
                if event.data.get("state") in TERMINAL:
                    break
    ended: dict[str, Any] = decoded(call(client, "GET", path), TASK)  # TASK is an object
    return ended


class Bar:
    """A one-line Rich progress bar of one task: waiting, then running, then done."""

    def __init__(self, out: Output, task: dict[str, Any]) -> None:
        self.progress = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            TaskProgressColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[value]}", markup=False),
            console=out.stderr,
        )
        self.row: TaskID = self.progress.add_task(
            clean(f"{task['name']} {where(task)}", one_line=True), total=100, start=False, value=""
        )
        self.name = clean(task["name"], one_line=True)
        self.started = False

    def __enter__(self) -> "Bar":
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def update(self, data: dict[str, Any]) -> None:
        """Show a state or progress event: the place in line, then percent and value."""
        state = data.get("state", "")
        if state in RUNNING or state in TERMINAL:
            if not self.started:
                self.progress.start_task(self.row)
                self.started = True
            if state in TERMINAL:
                self.progress.stop_task(self.row)
        description = f"{self.name} {'running' if state in RUNNING else state.lower()}"
        if state not in RUNNING and (place := where(data)):
            description += f" ({place})"
        fields: dict[str, Any] = {"description": description}
        if progress := data.get("progress"):
            fields["completed"] = progress.get("percent", 0)
            fields["value"] = progress_value(data)
        if state == "SUCCESS":
            fields["completed"] = 100
        self.progress.update(self.row, **fields)
