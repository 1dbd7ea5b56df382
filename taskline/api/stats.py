"""Host statistics from psutil, gathered off the event loop.

CPU figures are rates over an interval: a background sampler measures them once a second, so
every request (the first included) gets a real figure without waiting and without one
request's call resetting another's interval.
"""

import asyncio
import contextlib
import os
from typing import Any

import psutil
from anyio import to_thread

SAMPLE_INTERVAL = 1.0


class CpuSampler:
    """Keeps the latest per-core load and time shares, refreshed every second."""

    def __init__(self) -> None:
        self.per_core: list[float] = []
        self.times: list[dict[str, float]] = []
        self._task: asyncio.Task[None] | None = None

    def _sample(self, interval: float | None) -> None:
        # cpu_times_percent takes its own interval; with None it compares against its last call.
        self.per_core = psutil.cpu_percent(interval=interval, percpu=True)
        self.times = [t._asdict() for t in psutil.cpu_times_percent(interval=None, percpu=True)]

    async def start(self) -> None:
        """Take a first short sample, then keep sampling in the background."""
        psutil.cpu_times_percent(interval=None, percpu=True)
        await to_thread.run_sync(self._sample, 0.2)
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SAMPLE_INTERVAL)
            await to_thread.run_sync(self._sample, None)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def cpu_percent(self) -> dict[str, Any]:
        """Overall and per-core load in percent over the last second."""
        total = round(sum(self.per_core) / len(self.per_core), 1) if self.per_core else 0.0
        return {"total": total, "per_core": self.per_core}


def partitions_usage() -> list[dict[str, Any]]:
    """Mounted partitions with total, used and free bytes; unreadable mounts are skipped."""
    out = []
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        out.append(
            {
                "device": part.device,
                "mountpoint": part.mountpoint,
                "fstype": part.fstype,
                **usage._asdict(),
            }
        )
    return out


def memory() -> dict[str, Any]:
    """Virtual memory and swap in bytes and percent."""
    return {"virtual": psutil.virtual_memory()._asdict(), "swap": psutil.swap_memory()._asdict()}


def host(sampler: CpuSampler) -> dict[str, Any]:
    """A summary of the host: name, boot time, load, CPU, memory and root disk usage."""
    return {
        "hostname": os.uname().nodename,
        "boot_time": psutil.boot_time(),
        "cpu_count": psutil.cpu_count(),
        "load_average": list(os.getloadavg()),
        "cpu_percent": sampler.cpu_percent()["total"],
        "memory_percent": psutil.virtual_memory().percent,
        "disk_percent": psutil.disk_usage("/").percent,
    }
