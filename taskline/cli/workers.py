"""`workers`: the line's workers, the active one and its standbys, as GET /workers shows them."""

from datetime import UTC, datetime
from typing import Any

from rich.table import Table

from taskline.cli.stats import size
from taskline.cli.terminal import text


def _age(moment: str | None, now: datetime) -> str:
    """How long ago an ISO time was: `1.2 s ago`."""
    if not moment:
        return "-"
    try:
        then = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    except ValueError:
        return text(moment).plain
    return f"{max((now - then).total_seconds(), 0):.1f} s ago"


def render(answer: dict[str, Any]) -> Table:
    """One row per worker: its role, line, where it runs, what it runs, its host's load."""
    now = datetime.now(UTC)
    table = Table(
        title=f"Workers ({len(answer['workers'])}; a silent one drops out after "
        f"{answer.get('expiry_seconds', 0):g} s)",
        title_justify="left",
    )
    for heading in ("node", "role", "line", "queue", "host", "pid", "task", "heartbeat"):
        table.add_column(heading, no_wrap=heading in ("role", "pid", "heartbeat"))
    for heading in ("CPU %", "memory", "disk"):
        table.add_column(heading, justify="right", no_wrap=True)
    for worker in answer["workers"]:
        memory, disk = worker.get("memory", {}), worker.get("disk", {})
        table.add_row(
            text(worker["node"]),
            text("active", "bold green") if worker.get("active") else text("standby", "dim"),
            text(worker.get("line", "")),
            text(worker.get("queue", "")),
            text(worker.get("host", "")),
            text(worker.get("pid", "")),
            text(worker.get("task_id") or "-"),
            _age(worker.get("last_heartbeat"), now),
            f"{worker.get('cpu_percent', 0):.1f}",
            f"{memory.get('percent', 0):.0f} % of {size(memory.get('total', 0))}",
            f"{disk.get('percent', 0):.0f} % of {size(disk.get('total', 0))}",
        )
    return table
