"""The configured Celery app: every execution guarantee lives here, not in task decorators.

The task types' implementations are bound when a booting worker imports its modules
(`import_modules`), which the API never does: it publishes by name through this app without
importing any task code.
"""

from typing import Any

from celery import Celery
from celery.signals import celeryd_after_setup, celeryd_init, import_modules
from kombu import Exchange, Queue

from taskline.core.guard import exit_if_unsafe
from taskline.core.layout import exit_if_old_layout
from taskline.core.line_backfill import adopt_at_start
from taskline.core.line_queue import MAX_PRIORITY, exit_if_mismatched, queue_arguments
from taskline.core.lines import Line
from taskline.core.logs import hide_results
from taskline.core.registry import limits, loaded
from taskline.core.settings import Settings, get_settings, lines_of


class TasklineCelery(Celery):
    """A Celery app that carries the Taskline settings it was built from, and, in a worker,
    the line it consumes (set as the worker boots: see _consume_one_line)."""

    def __init__(self, settings: Settings) -> None:
        super().__init__(
            "taskline", set_as_current=False, task_cls="taskline.worker.base:TasklineTask"
        )
        self.settings = settings
        self.line: Line = lines_of(settings).main


def create_celery_app(settings: Settings, *, with_backend: bool = True) -> TasklineCelery:
    """Build the app: durable queue, confirms, late acks, one task at a time.

    A publisher passes `with_backend=False`: it reads task state from Redis itself, and
    Celery's Redis backend would otherwise subscribe to a channel for every task it sends.
    """
    app = TasklineCelery(settings)
    quorum = settings.queue_type == "quorum"
    exchange = Exchange(settings.queue, type="direct", durable=True)
    lines = lines_of(settings)
    # One queue per line, on one exchange; a worker consumes one of them (-Q).
    queues = tuple(
        Queue(
            line.queue,
            exchange,
            routing_key=line.queue,
            durable=True,
            # One active consumer: the standby workers wait; a classic queue keeps priorities
            # 0-9, a quorum queue none (core.line_queue).
            queue_arguments=queue_arguments(settings),
        )
        for line in lines
    )
    tasks = loaded(settings)
    app.conf.update(
        broker_url=settings.broker_url,
        # Celery's Redis backend, each state write one round trip (worker.backend).
        result_backend=(
            f"taskline.worker.backend:TasklineRedisBackend+{settings.redis_url}"
            if with_backend
            else None
        ),
        result_backend_transport_options={"global_keyprefix": settings.key_prefix},
        broker_transport_options={"confirm_publish": True},
        broker_connection_timeout=settings.connect_timeout,
        broker_connection_retry_on_startup=True,
        redis_socket_connect_timeout=settings.connect_timeout,
        redis_socket_timeout=5.0,
        redis_retry_on_timeout=True,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_queues=queues,
        # A task sent by name (Flower) goes to its type's line; Taskline names the queue.
        task_routes={
            name: {"queue": lines.of(name).queue, "routing_key": lines.of(name).queue}
            for name in tasks
        },
        task_default_queue=settings.queue,
        task_default_exchange=settings.queue,
        task_default_routing_key=settings.queue,
        task_create_missing_queues=False,
        task_default_delivery_mode="persistent",
        task_queue_max_priority=None if quorum else MAX_PRIORITY,
        task_default_priority=5,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_track_started=True,
        task_send_sent_event=True,
        result_extended=True,
        result_expires=settings.retention_seconds,
        worker_send_task_events=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=1,
        worker_pool="prefork",
        # RabbitMQ's consumer_timeout closes the channel of a consumer holding a message too
        # long (406 PRECONDITION_FAILED): reconnect, as after a lost connection, instead of
        # exiting.
        broker_channel_error_retry=True,
        # A lost connection or channel requeues the running task's message; let the task go
        # on: its redelivery, wherever it lands, waits while the run holds its lease
        # (worker.hooks.claim) and is dropped once it ended. Cancelling it instead would
        # restart a task longer than consumer_timeout over and over.
        worker_cancel_long_running_tasks_on_connection_loss=False,
        # On SIGTERM (remapped to SIGQUIT under supervisord) give the running task this long
        # to finish, then cancel it: its unacknowledged message goes back to the queue.
        worker_soft_shutdown_timeout=settings.soft_shutdown_seconds,
        worker_hijack_root_logger=False,
        task_annotations={
            name: dict(zip(("soft_time_limit", "time_limit"), limits(t), strict=True))
            for name, t in tasks.items()
        },
        imports=("taskline.worker.presence",),
        # On a quorum queue each turn is bound to the head of the line when it is delivered.
        worker_consumer=(
            "taskline.worker.consumer:TurnConsumer" if quorum else "celery.worker.consumer:Consumer"
        ),
        enable_utc=True,
        timezone="UTC",
    )
    return app


app = create_celery_app(get_settings())
hide_results()  # the pool's children inherit the filter


@celeryd_init.connect
def _refuse_unsafe_production(instance: Any, **_: Any) -> None:
    """A worker booting in production on unsafe settings exits before it connects anywhere.

    SystemExit, not an exception: Celery logs and swallows a signal receiver's exceptions.
    """
    if isinstance(instance.app, TasklineCelery):
        exit_if_unsafe(instance.app.settings, "worker")


@celeryd_init.connect
def _refuse_an_old_layout(instance: Any, **_: Any) -> None:
    """A worker whose Redis holds ledgers of a layout it no longer reads exits before it
    consumes (after the production guard: a refused setting is said first)."""
    if isinstance(instance.app, TasklineCelery):
        exit_if_old_layout(instance.app.settings, "worker")
        # A quorum turn finds a record made before lines running on the main line.
        adopt_at_start(instance.app.settings, "worker")


@celeryd_init.connect
def _refuse_other_queue_arguments(instance: Any, **_: Any) -> None:
    """A worker whose queue was declared with other arguments exits, saying how to migrate
    (core.line_queue), instead of retrying RabbitMQ's refusal of its declare forever."""
    if isinstance(instance.app, TasklineCelery):
        exit_if_mismatched(instance.app.settings, "worker")


@celeryd_after_setup.connect
def _consume_one_line(instance: Any, **_: Any) -> None:
    """A worker consumes one line: the queue -Q names, or without -Q the line of
    TASKLINE_WORKER_LINE (by default the main line). Its runs write that line's keys."""
    app = instance.app
    if not isinstance(app, TasklineCelery):
        return
    lines = lines_of(app.settings)
    queues = app.amqp.queues
    consumed = sorted(queues.consume_from or queues)
    if len(lines) > 1 and len(consumed) == len(lines):  # no -Q: the setting's line
        line = lines.named(app.settings.worker_line)
        queues.select([line.queue])
    else:
        found = [lines.by_queue(name) for name in consumed]
        if len(found) != 1 or found[0] is None:
            raise SystemExit(
                f"Taskline worker refuses to start: it consumes {', '.join(consumed)}, but a "
                "worker consumes the queue of one line: "
                + ", ".join(f"{line.name}: -Q {line.queue}" for line in lines)
                + " (or TASKLINE_WORKER_LINE=LINE and no -Q)"
            )
        line = found[0]
    app.line = line


@celeryd_init.connect
def _worker_log(instance: Any, **_: Any) -> None:
    """A booting worker writes its log as every Taskline process does (worker.log_setup,
    imported here: the API, which builds messages with this app, never loads it)."""
    if isinstance(instance.app, TasklineCelery):
        from taskline.worker import log_setup

        log_setup.prepare(instance)


@celeryd_init.connect
def _events_unconfirmed(conf: Any, **_: Any) -> None:
    """A worker sends its task events (for Flower) without waiting for publisher confirms.

    Events are transient, and the worker publishes nothing else; waiting for RabbitMQ's
    confirm of three events per task held the worker's main loop for a round trip each.
    Publishers of tasks (API, scheduler, Flower) keep their confirms.
    """
    conf.broker_transport_options = {**conf.broker_transport_options, "confirm_publish": False}


@import_modules.connect
def _bind_implementations(sender: Any, **_: Any) -> None:
    """A booting worker binds each declared task type to its implementation first."""
    if isinstance(sender, TasklineCelery):
        from taskline.worker.implementations import bind_on_boot  # the worker's only

        bind_on_boot(sender)
