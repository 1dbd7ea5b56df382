"""Redis CPU and commands a burst of tasks costs, with what Redis does meanwhile for others
taken out.

Redis's own counters are read before and after the burst: its main thread's CPU (`INFO cpu`:
used_cpu_sys_main_thread + used_cpu_user_main_thread, network system calls included) and the
calls of each command (`INFO commandstats`, which counts the commands a script runs as well as
the call that ran it, a command of Redis's `scripting` category). The same counters over a
quiet second just before give the idle rate (other clients of a shared Redis, heartbeats),
subtracted over the burst's length.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import redis

# The counters' own reads, left out of the counts.
OWN_COMMANDS = frozenset({"info"})


@dataclass(frozen=True)
class Counters:
    """Redis's counters at one moment."""

    at: float
    cpu: float  # seconds of the main thread, user + system
    calls: dict[str, int]

    def minus(self, earlier: Counters) -> tuple[float, float, dict[str, int]]:
        """Seconds, CPU seconds and calls of each command since `earlier`."""
        calls = {
            name: n - earlier.calls.get(name, 0)
            for name, n in self.calls.items()
            if n != earlier.calls.get(name, 0)
        }
        return self.at - earlier.at, self.cpu - earlier.cpu, calls


def read(client: redis.Redis) -> Counters:
    info = client.info("cpu", "commandstats")
    calls = {
        key.removeprefix("cmdstat_"): int(value["calls"])
        for key, value in info.items()
        if key.startswith("cmdstat_")
    }
    cpu = float(info["used_cpu_sys_main_thread"]) + float(info["used_cpu_user_main_thread"])
    return Counters(time.monotonic(), cpu, calls)


@dataclass(frozen=True)
class Idle:
    """What Redis spends per second while the measured processes do nothing."""

    cpu_per_s: float
    calls_per_s: dict[str, float]


def idle(client: redis.Redis, seconds: float = 1.0) -> Idle:
    before = read(client)
    time.sleep(seconds)
    elapsed, cpu, calls = read(client).minus(before)
    return Idle(cpu / elapsed, {name: n / elapsed for name, n in calls.items()})


def script_commands(client: redis.Redis) -> frozenset[str]:
    """The commands that run a script (Redis's `scripting` category), as commandstats names
    them: each is the round trip of one script."""
    names = client.command_list(category="scripting")
    return frozenset(n.decode() if isinstance(n, bytes) else str(n) for n in names)


@contextlib.contextmanager
def burst(client: redis.Redis, quiet: Idle, tasks: int) -> Iterator[dict[str, Any]]:
    """Measure the block; the yielded dict holds the figures per task once it ends."""
    figures: dict[str, Any] = {}
    scripts_run = script_commands(client)
    before = read(client)
    yield figures
    elapsed, cpu, calls = read(client).minus(before)
    cpu -= quiet.cpu_per_s * elapsed
    names = set(calls) | set(quiet.calls_per_s)
    per_task = {
        name: (calls.get(name, 0) - quiet.calls_per_s.get(name, 0.0) * elapsed) / tasks
        for name in names
        if name not in OWN_COMMANDS
    }
    per_task = {name: n for name, n in per_task.items() if n >= 0.05}
    scripts = sum(n for name, n in per_task.items() if name in scripts_run)
    figures.update(
        {
            "us_per_task": 1e6 * cpu / tasks,
            "commands_per_task": sum(n for name, n in per_task.items() if name not in scripts_run),
            "scripts_per_task": scripts,
            "calls_per_task": dict(sorted(per_task.items(), key=lambda kv: -kv[1])),
            "seconds": elapsed,
            "idle_us_per_s": 1e6 * quiet.cpu_per_s,
        }
    )
