"""Liveness and readiness."""

import asyncio

from fastapi import APIRouter, Response, status

from taskline.api.deps import ProducerDep, StoreDep
from taskline.api.producer import Producer
from taskline.api.schemas import Health, Readiness
from taskline.api.store import TaskStore

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def read_health() -> Health:
    """Answer while the process serves requests."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def read_readiness(store: StoreDep, producer: ProducerDep, response: Response) -> Readiness:
    """Check RabbitMQ, Redis and that a worker consumes the queue of every line."""
    redis_ok, consumers = await asyncio.gather(store.ping(), consumers_of(store, producer))
    broker = all(found is not None for found in consumers.values())
    ready = redis_ok and all(consumers.values())
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(
        ready=ready,
        broker=broker,
        redis=redis_ok,
        workers=sum(found or 0 for found in consumers.values()),
        lines={line: found or 0 for line, found in consumers.items()},
    )


async def consumers_of(store: TaskStore, producer: Producer) -> dict[str, int | None]:
    """The consumers RabbitMQ reports on each line's queue, by line (None: unreachable)."""
    lines = list(store.lines)
    found = await asyncio.gather(*(producer.consumers(line.queue) for line in lines))
    return {line.name: count for line, count in zip(lines, found, strict=True)}
