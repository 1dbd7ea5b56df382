"""`stats`: the host's CPU per core, memory and disks, from the API's public stats routes."""

from typing import Any

import httpx
from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table

from taskline.cli.answers import CPU, MEMORY, PARTITIONS, decoded
from taskline.cli.connection import call
from taskline.cli.terminal import text


def gather(client: httpx.Client) -> dict[str, Any]:
    """One document of the three routes (no sign-in needed)."""
    return {
        "cpu": decoded(call(client, "GET", "/cpu/percent"), CPU),
        "memory": decoded(call(client, "GET", "/memory"), MEMORY),
        "partitions": decoded(call(client, "GET", "/partitions/usage"), PARTITIONS),
    }


def size(count: float) -> str:
    """Bytes in binary units: `1.5 GiB`."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


def bar(percent: float) -> ProgressBar:
    """A load or fill level at a glance."""
    return ProgressBar(total=100, completed=percent, width=30)


def render(stats: dict[str, Any]) -> Group:
    """Three tables: CPU per core, memory and swap, disks."""
    cpu = Table(title=f"CPU {stats['cpu'].get('total', 0):.1f} %", title_justify="left")
    cpu.add_column("core", justify="right")
    cpu.add_column("load")
    cpu.add_column("%", justify="right")
    for core, percent in enumerate(stats["cpu"].get("per_core", [])):
        cpu.add_row(str(core), bar(percent), f"{percent:.1f}")
    memory = Table(title="Memory", title_justify="left")
    memory.add_column("")
    memory.add_column("use")
    for heading in ("%", "used", "total"):
        memory.add_column(heading, justify="right")
    for name in ("virtual", "swap"):
        figures = stats["memory"].get(name, {})
        memory.add_row(
            name,
            bar(figures.get("percent", 0)),
            f"{figures.get('percent', 0):.1f}",
            size(figures.get("used", 0)),
            size(figures.get("total", 0)),
        )
    disks = Table(title="Disks", title_justify="left")
    disks.add_column("mount")
    disks.add_column("use")
    for heading in ("%", "used", "total"):
        disks.add_column(heading, justify="right")
    disks.add_column("device")
    for part in stats["partitions"]:
        disks.add_row(
            text(part.get("mountpoint", "")),
            bar(part.get("percent", 0)),
            f"{part.get('percent', 0):.1f}",
            size(part.get("used", 0)),
            size(part.get("total", 0)),
            text(part.get("device", "")),
        )
    return Group(cpu, memory, disks)
