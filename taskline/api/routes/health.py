"""Liveness and readiness."""

import asyncio

from fastapi import APIRouter, Response, status

from taskline.api.deps import ProducerDep, StoreDep
from taskline.api.schemas import Health, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
async def read_health() -> Health:
    """Answer while the process serves requests."""
    return Health(status="ok")


@router.get("/ready", response_model=Readiness, responses={503: {"model": Readiness}})
async def read_readiness(store: StoreDep, producer: ProducerDep, response: Response) -> Readiness:
    """Check RabbitMQ, Redis and that a worker consumes the queue."""
    redis_ok, consumers = await asyncio.gather(store.ping(), producer.consumers())
    ready = redis_ok and bool(consumers)
    if not ready:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return Readiness(
        ready=ready, broker=consumers is not None, redis=redis_ok, workers=consumers or 0
    )
