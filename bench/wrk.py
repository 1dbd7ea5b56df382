"""Load from a separate process: wrk (C, epoll, LuaJIT) with the scripts in bench/lua/.

A run writes a small preamble (method, body, headers) in front of one of the Lua scripts,
starts wrk, and reads back the single `BENCH {json}` line the script prints when done.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

LUA = Path(__file__).resolve().parent / "lua"


@dataclass(frozen=True)
class Request:
    """One HTTP request shape that wrk repeats."""

    url: str
    method: str = "GET"
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    def preamble(self) -> str:
        """Lua setting wrk's request fields (strings as long brackets: no escaping needed)."""
        lines = [f"wrk.method = [==[{self.method}]==]"]
        if self.body is not None:
            lines.append(f"wrk.body = [==[{self.body}]==]")
        for name, value in self.headers.items():
            lines.append(f"wrk.headers[ [==[{name}]==] ] = [==[{value}]==]")
        return "\n".join(lines) + "\n"


def wrk_path() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: run bench/ensure-tools.sh (apt-get install wrk)")
    return found


def _run(request: Request, script: str, options: list[str], args: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        path = Path(tmp) / "run.lua"
        path.write_text(request.preamble() + (LUA / script).read_text())
        cmd = [wrk_path(), *options, "-s", str(path), request.url]
        if args:
            cmd += ["--", *args]
        out = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH "):
            result = json.loads(line[6:])
            result["rate"] = result["requests"] / result["duration_s"]
            return result
    raise RuntimeError(f"wrk printed no result (exit {out.returncode}): {out.stderr[-2000:]}")


def closed_loop(
    request: Request, seconds: float, connections: int = 32, threads: int = 2
) -> dict[str, Any]:
    """As many requests as `connections` keep-alive connections can make: the peak rate."""
    options = [
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
    ]
    return _run(request, "report.lua", options, [])


def fixed_rate(
    request: Request, rate: float, seconds: float, connections: int = 8
) -> dict[str, Any]:
    """Requests at a fixed total rate, latencies free of coordinated omission."""
    options = [
        f"-t{connections}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "10s",
    ]
    return _run(request, "fixed_rate.lua", options, [f"{rate:.3f}", str(connections)])
