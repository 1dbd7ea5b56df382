"""Baseline for status reads: the FastAPI + Celery tutorial pattern.

Each request builds `AsyncResult(id)` and reads `.state` and `.info` (each a GET of Celery's
result key in Redis) in Starlette's thread pool. It reads the same Redis backend keys the
Taskline worker writes (TASKLINE_REDIS_URL, TASKLINE_KEY_PREFIX). No authentication, as in
the tutorials.
"""

from typing import Any

from celery import Celery
from celery.result import AsyncResult
from fastapi import FastAPI
from starlette.concurrency import run_in_threadpool

from taskline.core.settings import get_settings

settings = get_settings()
celery = Celery("baseline", broker=settings.broker_url, backend=settings.redis_url)
celery.conf.result_backend_transport_options = {"global_keyprefix": settings.key_prefix}

app = FastAPI(title="AsyncResult baseline")


def _read(task_id: str) -> dict[str, Any]:
    result = AsyncResult(task_id, app=celery)
    return {"id": task_id, "state": result.state, "info": result.info}


@app.get("/status/{task_id}")
async def read_status(task_id: str) -> dict[str, Any]:
    """A task's Celery state and meta, read in a worker thread."""
    return await run_in_threadpool(_read, task_id)


@app.get("/health")
async def read_health() -> dict[str, str]:
    return {"status": "ok"}
