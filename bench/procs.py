"""Processes the suite starts, and the means to stop every one of them whatever happens.

Each child runs in its own session (so a Ctrl-C reaches only the suite, which then stops them
in order) and is remembered in one registry; `stop_all` runs from `finally`, from atexit and
from SIGTERM/SIGHUP, so a failed or interrupted run leaves nothing behind.
"""

from __future__ import annotations

import atexit
import contextlib
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from tests.support import start_process, stop_process, wait_until

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


_running: dict[int, tuple[str, subprocess.Popen]] = {}


def start(name: str, args: list[str], env: dict[str, str], logs: Path) -> subprocess.Popen:
    """Start a process in its own session, output to logs/<name>.log, and remember it."""
    proc = start_process(args, env, logs / f"{name}.log")
    _running[proc.pid] = (name, proc)
    return proc


def stop(proc: subprocess.Popen | None, timeout: float = 15.0) -> None:
    """TERM the process group, KILL it if it lingers; forget it."""
    if proc is None:
        return
    _running.pop(proc.pid, None)
    stop_process(proc, timeout)


def stop_pid(pid: int) -> None:
    """Stop a process started by start(), by its pid."""
    entry = _running.get(pid)
    if entry:
        stop(entry[1])


def stop_all() -> None:
    """Stop every process still running, newest first."""
    for _, proc in reversed(list(_running.values())):
        stop(proc)


def _on_signal(signum: int, frame: object) -> None:
    # Unwind through the suite's `finally` blocks as Ctrl-C does.
    raise KeyboardInterrupt(f"signal {signum}")


def install_handlers() -> None:
    """Stop children on exit and turn TERM/HUP into the same unwinding as Ctrl-C."""
    atexit.register(stop_all)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _on_signal)


def answers(url: str) -> bool:
    """Whether an HTTP GET of url gets any answer below 500."""
    try:
        return httpx.get(url, timeout=1).status_code < 500
    except httpx.TransportError:
        return False


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Wait until url answers; fail at once if the process died."""

    def ready() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before serving")
        return answers(url)

    wait_until(ready, timeout, 0.1, url)


def tree(pid: int) -> list[psutil.Process]:
    """The process and its descendants (uvicorn --workers, Celery's pool)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def rss_mb(pid: int, children: bool = True) -> float:
    """Resident memory in MB of a process (and its descendants)."""
    total = 0
    for proc in tree(pid) if children else tree(pid)[:1]:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += proc.memory_info().rss
    return total / 1e6


def cpu_seconds(pid: int) -> float:
    """User+system CPU seconds used so far by a process and its live descendants."""
    total = 0.0
    for proc in tree(pid):
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


class ForeignLoad:
    """CPU used on this machine by processes that are neither the suite's nor the services'.

    Other people's test runs on a shared machine disturb the figures; this measures by how
    much, so the report can say so. Busy CPU of the whole machine, minus the suite's process
    tree (live and reaped), minus RabbitMQ and Redis (the services the suite loads).
    """

    SERVICES = ("beam.smp", "redis-server", "epmd")

    def __init__(self) -> None:
        self.services = [
            p for p in psutil.process_iter(["name"]) if p.info["name"] in self.SERVICES
        ]

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    @staticmethod
    def _cpu(proc: psutil.Process, reaped: bool) -> float:
        try:
            t = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return 0.0
        return t.user + t.system + (t.children_user + t.children_system if reaped else 0.0)

    def sample(self) -> tuple[float, float]:
        """(wall time, foreign CPU seconds so far): differences of two samples are the load."""
        me = psutil.Process()
        ours = self._cpu(me, True) + sum(self._cpu(p, True) for p in me.children(recursive=True))
        services = sum(self._cpu(p, False) for p in self.services)
        return time.monotonic(), self._busy() - ours - services


def foreign_percent(start: tuple[float, float], end: tuple[float, float]) -> float:
    """Foreign CPU between two samples, in percent of one core."""
    return 100 * (end[1] - start[1]) / max(1e-9, end[0] - start[0])
