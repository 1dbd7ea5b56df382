"""Host statistics (the routes of the project this grew from)."""

from typing import Any

from anyio import to_thread
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from taskline.api import stats
from taskline.api.deps import SamplerDep

router = APIRouter(tags=["host"])


@router.get("/", response_model=None, responses={303: {"description": "A browser: see /ui"}})
async def read_host(request: Request, sampler: SamplerDep) -> dict[str, Any] | Response:
    """Summarise the host: CPU, memory, disk and load. A browser is sent to the dashboard."""
    if prefers_html(request.headers.get("accept", "")):
        return RedirectResponse("/ui", status_code=303)
    return await to_thread.run_sync(stats.host, sampler)


def prefers_html(accept: str) -> bool:
    """Whether an Accept header ranks HTML above JSON: a browser's does (it names text/html,
    and JSON only through */*); curl's and HTTP libraries' `*/*` ties them, and keeps JSON."""
    weights: dict[str, float] = {}
    for part in accept.split(","):
        media, *options = (piece.strip() for piece in part.split(";"))
        weight = 1.0
        for option in options:
            name, _, value = option.partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        weights[media.lower()] = max(weight, weights.get(media.lower(), 0.0))

    def weight_of(media: str) -> float:
        kind = media.split("/")[0]
        return weights.get(media, weights.get(f"{kind}/*", weights.get("*/*", 0.0)))

    return weight_of("text/html") > weight_of("application/json")


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
