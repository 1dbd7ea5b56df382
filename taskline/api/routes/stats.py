"""Host statistics (the routes of the project this grew from)."""

from typing import Any

from anyio import to_thread
from fastapi import APIRouter

from taskline.api import stats
from taskline.api.deps import SamplerDep

router = APIRouter(tags=["host"])


@router.get("/")
async def read_host(sampler: SamplerDep) -> dict[str, Any]:
    """Summarise the host: CPU, memory, disk and load."""
    return await to_thread.run_sync(stats.host, sampler)


@router.get("/cpu/percent")
async def read_cpu_percent(sampler: SamplerDep) -> dict[str, Any]:
    """Report overall and per-core CPU load over the last second."""
    return sampler.cpu_percent()


@router.get("/cpu/times_percent")
async def read_cpu_times_percent(sampler: SamplerDep) -> list[dict[str, float]]:
    """Report, per core, the share of time in user, system, idle… over the last second."""
    return sampler.times


@router.get("/partitions/usage")
async def read_partitions_usage() -> list[dict[str, Any]]:
    """List disk partitions with total, used and free bytes and percent used."""
    return await to_thread.run_sync(stats.partitions_usage)


@router.get("/memory")
async def read_memory() -> dict[str, Any]:
    """Report virtual memory and swap."""
    return await to_thread.run_sync(stats.memory)
