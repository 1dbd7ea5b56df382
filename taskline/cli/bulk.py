"""Bulk forms of `cancel`, `retry` and `delete`: several ids, or a filter of the listing, sent
to `POST /tasks/bulk/{action}` (a filter page after page, as its cursor says), and the report
of every task."""

from typing import Any

import httpx
from rich.table import Table

from taskline.cli.answers import BULK, decoded
from taskline.cli.connection import call, describe
from taskline.cli.exits import ExitCode
from taskline.cli.terminal import text


def act(
    client: httpx.Client, action: str, ids: list[str], query: dict[str, str]
) -> list[dict[str, Any]]:
    """Every task's result: of `ids` in one call (more than the API's TASKLINE_BULK_MAX are
    refused whole), else of each page of the filter `query` until none is left."""
    path = f"/tasks/bulk/{action}"
    results: list[dict[str, Any]] = []
    if ids:
        body: dict[str, Any] = {"ids": ids}
        results += decoded(call(client, "POST", path, json=body), BULK)["results"]
        return results
    cursor: str | None = None
    while True:
        body = {"filter": query} | ({"cursor": cursor} if cursor else {})
        page = decoded(call(client, "POST", path, json=body), BULK)
        results += page["results"]
        cursor = page.get("next_cursor")
        if not cursor:
            return results


def report(results: list[dict[str, Any]]) -> Table:
    """One row per task: its id, what was done (refused, and why), a retry's new task."""
    table = Table.grid(padding=(0, 2))
    for column in ("id", "outcome", "detail"):
        table.add_column(column, overflow="fold")
    for result in results:
        outcome = result["outcome"]
        if outcome == "refused":
            note = describe(result.get("detail"))
        elif result.get("retry_id"):
            note = f"as {result['retry_id']}"
        else:
            note = ""
        style = "red" if outcome == "refused" else "green"
        table.add_row(text(result["id"]), text(outcome, style), text(note))
    return table


def exit_code(results: list[dict[str, Any]]) -> ExitCode:
    """REFUSED if any task was refused, else OK."""
    refused = any(r["outcome"] == "refused" for r in results)
    return ExitCode.REFUSED if refused else ExitCode.OK
