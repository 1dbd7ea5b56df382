"""The FastAPI application: lifespan, routers and the error handlers."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from taskline.api.access import Access, AccessLog
from taskline.api.addresses import ClientAddresses
from taskline.api.auth import Authenticator
from taskline.api.errors import TasklineError, error_response, validation_error_response
from taskline.api.events import EventHub
from taskline.api.hotpaths import HotPaths
from taskline.api.limits import BodyLimit
from taskline.api.line import LineHub
from taskline.api.metrics import ProcessMetrics, multiprocess_dir
from taskline.api.producer import Producer
from taskline.api.routes import (
    auth,
    bulk,
    catalog,
    docs,
    events,
    health,
    metrics,
    queue,
    seeds,
    serials,
    stats,
    tasks,
    ui,
    workers,
)
from taskline.api.stats import CpuSampler
from taskline.api.store import TaskStore
from taskline.api.streams import StreamSlots
from taskline.api.submit import Submitter
from taskline.core import redis_clients
from taskline.core.guard import check as check_production
from taskline.core.layout import exit_if_old_layout
from taskline.core.ledger import Ledger
from taskline.core.line_backfill import adopt_at_start
from taskline.core.line_queue import exit_if_mismatched
from taskline.core.log_format import configure as configure_logging
from taskline.core.logs import hide_tokens
from taskline.core.records import Keys
from taskline.core.registry import loaded, packages_of
from taskline.core.settings import Settings, get_settings, lines_of

# The built-in task types' package: the seed routes and serial checks are served with it.
BUILTINS = "taskline.builtins"

# Redis connections of one API process; one of them is held by the event subscription.
REDIS_CONNECTIONS = 100


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API around one Redis pool, one producer and one CPU sampler."""
    settings = settings or get_settings()
    # uvicorn configured its loggers before it called this factory: every line, its own
    # included, goes to one handler in the configured format from here on.
    log_handler = configure_logging("api", settings.log_format)
    check_production(settings, "API")
    task_types = loaded(settings)  # all the task types, or the process stops saying why
    exit_if_old_layout(settings, "API")  # before it serves: no ledger of the old layout
    adopt_at_start(settings, "API")  # the main line's listing finds records made before lines
    hide_tokens()
    # This process's counters (api.metrics), in the shared directory when one is set.
    multiprocess_dir()
    process_metrics = ProcessMetrics() if settings.metrics else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A queue declared with other arguments: refuse to start, saying how to migrate.
        try:
            await to_thread.run_sync(exit_if_mismatched, settings, "API")
        except SystemExit as refusal:
            logging.getLogger("taskline.api").critical("%s", refusal)
            raise
        # After a Redis restart or failover the idle pooled connections are dead, and
        # redis-py hands them out unchecked (RESP3): retry a command that meets a closed
        # connection on a fresh one (with sentinels, to the primary they name then). Only
        # connection errors: retried timeouts would turn a 503 into a long wait.
        # When every pooled connection is busy (hundreds of streams woken at once) a request
        # waits for one, up to the connect timeout, instead of failing at once.
        redis = redis_clients.async_client(
            settings,
            max_connections=REDIS_CONNECTIONS,
            timeout=settings.connect_timeout,
            decode_responses=True,
            socket_connect_timeout=settings.connect_timeout,
            socket_timeout=settings.connect_timeout,
            retry=Retry(
                ExponentialBackoff(cap=0.1, base=0.01),
                retries=2,
                supported_errors=(RedisConnectionError,),
            ),
        )
        app.state.settings = settings
        keys = Keys(settings.key_prefix)
        app.state.store = TaskStore(
            redis,
            keys,
            round(settings.worker_expiry_seconds * 1000),
            lines_of(settings),
            most_examined=settings.search_most_examined,
        )
        # First: it refuses users whose names are not allowed, before anything else starts.
        app.state.authenticator = Authenticator(settings, app.state.store)
        app.state.addresses = ClientAddresses(settings.trusted_proxies)
        app.state.hub = EventHub(redis, keys.channel)
        await app.state.hub.start()
        app.state.line = LineHub(
            redis,
            keys,
            block_ms=int(settings.connect_timeout * 500),
            lines={  # the main line first
                line.name: app.state.store.line_keys[line.name]
                for line in sorted(app.state.store.lines, key=lambda line: not line.main)
            },
        )
        app.state.slots = StreamSlots(redis, keys, settings.max_streams_per_user)
        await app.state.slots.start()
        app.state.producer = Producer(settings)
        app.state.ledger = Ledger(redis, keys)
        app.state.submitter = Submitter(app.state.store, app.state.producer, settings)
        if process_metrics is not None:
            app.state.submitter.on_created = process_metrics.created
        app.state.sampler = CpuSampler()
        await app.state.sampler.start()
        try:
            yield
        finally:
            await app.state.sampler.stop()
            await app.state.slots.stop()
            await app.state.hub.stop()
            await app.state.line.stop()
            await app.state.producer.close()
            app.state.authenticator.close()
            await redis.aclose()

    app = FastAPI(
        title="Taskline",
        summary="Run predefined tasks one at a time on a Celery worker; watch and control them.",
        version="0.1.0",
        lifespan=lifespan,
        # Both of FastAPI's pages load their scripts from a CDN: /docs is served from the
        # API's own files instead (routes/docs.py), and there is no ReDoc.
        docs_url=None,
        redoc_url=None,
    )
    app.state.metrics = process_metrics
    # The last added runs first: the body limit also guards the hot paths, and every request
    # has its id and its access line, refused ones too.
    app.add_middleware(HotPaths)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        Access,
        log=AccessLog(log_handler) if settings.access_log else None,
        metrics=process_metrics,
    )
    # Bulk first: `/tasks/bulk/cancel` would otherwise be the cancel of a task named "bulk".
    for module in (bulk, tasks, events, queue, workers, catalog, auth, health, metrics, stats):
        app.include_router(module.router)
    if BUILTINS in packages_of(settings.task_packages):  # routes for the built-ins' sake
        app.include_router(serials.router)
        app.include_router(seeds.router)
    app.include_router(ui.router)  # the dashboard: /ui, outside the OpenAPI document
    docs.add_docs(app)
    catalog.document_examples(app, task_types)

    @app.exception_handler(TasklineError)
    async def taskline_error(request: Request, exc: TasklineError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error_response(exc)

    return app
