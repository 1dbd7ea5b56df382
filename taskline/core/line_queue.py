"""Each line's RabbitMQ queue: its arguments, and declaring them as every process starts.

RabbitMQ never changes the arguments of a queue that exists: declaring it with others is
refused (406 PRECONDITION_FAILED, the channel closed), and a worker would only retry that
forever. So the worker, the API and the scheduler declare every queue first thing: a queue
declared earlier with other arguments (before `x-single-active-consumer`, with another
`x-max-priority`, or of the other type than TASKLINE_QUEUE_TYPE's) is replaced if RabbitMQ
itself confirms it is empty and unused (a delete with if-empty and if-unused, atomic in the
broker, so no message can be lost); otherwise the process refuses to start, saying how to
migrate. RabbitMQ deletes a quorum queue only unconditionally (540 NOT_IMPLEMENTED for the
conditions), so a quorum queue with other arguments is never replaced here, even empty: the
steps say to delete it once drained. A broker that cannot be reached is no refusal: the
process starts and waits for it, as it always did.
"""

import logging
from dataclasses import dataclass
from typing import Any

from amqp.exceptions import AMQPError, AMQPNotImplementedError, PreconditionFailed
from kombu import Connection
from kombu.exceptions import OperationalError

from taskline.core.settings import Settings, lines_of

# Priority 0-9 (higher first, then FIFO); one active consumer keeps the order even with a
# standby worker attached: RabbitMQ delivers to the first consumer attached and passes the
# line on only when it leaves.
MAX_PRIORITY = 9
QUEUE_ARGUMENTS: dict[str, Any] = {
    "x-max-priority": MAX_PRIORITY,
    "x-single-active-consumer": True,
}
# A quorum queue, replicated over a cluster, keeps no priorities (RabbitMQ 3.x refuses the
# argument): each of its turns runs the line's head (worker.consumer). One active consumer
# all the same.
QUORUM_QUEUE_ARGUMENTS: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-single-active-consumer": True,
}

log = logging.getLogger("taskline.queue")

_BROKER_ERRORS = (OperationalError, AMQPError, OSError, TimeoutError)


def queue_arguments(settings: Settings) -> dict[str, Any]:
    """The queue's arguments for its type (TASKLINE_QUEUE_TYPE)."""
    return QUORUM_QUEUE_ARGUMENTS if settings.queue_type == "quorum" else QUEUE_ARGUMENTS


class QueueMismatchError(Exception):
    """The queue `name` exists with other arguments, and replacing it could lose messages.

    `replaceable`: False when RabbitMQ cannot delete it only if empty and unused (a quorum
    queue), so no process replaces it even once drained."""

    def __init__(self, refusal: str, name: str, *, replaceable: bool = True) -> None:
        super().__init__(refusal)
        self.name = name
        self.replaceable = replaceable


@dataclass(frozen=True, slots=True)
class Declared:
    """The queue is there with Taskline's arguments (it was, or it was created)."""


@dataclass(frozen=True, slots=True)
class Migrated:
    """It had other arguments; being empty and unused, it was replaced."""

    refusal: str  # what RabbitMQ said of the old arguments


@dataclass(frozen=True, slots=True)
class Unreachable:
    """RabbitMQ did not answer: nothing could be checked."""

    error: str


def mismatch_message(
    settings: Settings, refusal: str, name: str | None = None, *, replaceable: bool = True
) -> str:
    """What is wrong with the queue (`name`, else the main line's), and the exact steps of
    the migration (`replaceable`: as QueueMismatchError's)."""
    name = name or settings.queue
    with Connection(settings.broker_url) as connection:
        vhost = connection.virtual_host or "/"
    wanted = ", ".join(f"{k}={v!r}" for k, v in queue_arguments(settings).items())
    delete = f"`rabbitmqctl -p {vhost} delete_queue {name}`"
    if replaceable:
        why = (
            "this queue holds messages or has consumers, so it is not replaced here "
            "(an empty, unused one would be)"
        )
        drained = "then start this version: it replaces the empty queue itself"
    else:
        why = (
            "this is a quorum queue, which RabbitMQ deletes only unconditionally, so it is "
            "never replaced here, even empty"
        )
        drained = f"run {delete}, then start this version"
    return (
        f"RabbitMQ's queue {name!r} (vhost {vhost!r}) was declared with other arguments "
        f"than Taskline's for a {settings.queue_type} queue ({wanted}): {refusal}.\n"
        f"RabbitMQ cannot change a queue's arguments, and {why}. Migrate it one of two ways:\n"
        "  a) drain it: stop the API and the scheduler, let the running workers finish what "
        f"the queue holds until `rabbitmqctl -p {vhost} list_queues name messages consumers` "
        f"shows 0 messages for {name!r}, stop those workers, {drained};\n"
        "  b) at once: stop every worker, API and scheduler of this queue, run "
        f"{delete}, then start this version: the queue "
        "is declared anew and the scheduler publishes the turn of every waiting task again "
        "from its Redis record, in line order (a message sent by name from another tool, "
        "with no Taskline record, is lost this way: use a) if there are any)."
    )


def declare(settings: Settings) -> Declared | Migrated | Unreachable:
    """Declare the queue of every line with Taskline's arguments, over one connection (a
    broker that does not answer is waited for once, not once per line); QueueMismatchError
    (its text the reply of RabbitMQ, its name the queue's) when one exists with others and
    could not be replaced without loss."""
    outcome: Declared | Migrated = Declared()
    try:
        timeout = settings.connect_timeout
        # A stalled broker (it accepts the connection, then answers nothing) times out too.
        stalled = {"read_timeout": timeout, "write_timeout": timeout}
        with Connection(
            settings.broker_url, connect_timeout=timeout, transport_options=stalled
        ) as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=round(timeout) or 1)
            for line in lines_of(settings):
                declared = _declare_or_replace(conn, settings, line.queue)
                if isinstance(declared, Migrated):
                    outcome = declared
    except QueueMismatchError:
        raise
    except _BROKER_ERRORS as exc:
        return Unreachable(str(exc))
    return outcome


def _declare_or_replace(conn: Connection, settings: Settings, name: str) -> Declared | Migrated:
    """Declare one queue with Taskline's arguments (see declare)."""
    try:
        _declare(conn.channel(), settings, name)
        return Declared()
    except PreconditionFailed as exc:
        refusal = str(exc.reply_text)
    try:
        # Atomic in RabbitMQ: refused (406) while one message or consumer is there.
        channel: Any = conn.channel()  # py-amqp's: kombu's stub names no queue_delete
        channel.queue_delete(name, if_unused=True, if_empty=True)
    except PreconditionFailed as exc:
        raise QueueMismatchError(refusal, name) from exc
    except AMQPNotImplementedError as exc:  # a quorum queue: no conditional delete
        raise QueueMismatchError(refusal, name, replaceable=False) from exc
    _declare(conn.channel(), settings, name)
    log.warning("queue %r replaced (it was empty and unused): %s", name, refusal)
    return Migrated(refusal)


def _declare(channel: Any, settings: Settings, name: str) -> None:
    try:
        channel.queue_declare(
            name, durable=True, auto_delete=False, arguments=queue_arguments(settings)
        )
    finally:
        if channel.is_open:
            channel.close()


def exit_if_mismatched(settings: Settings, process: str) -> Declared | Migrated | Unreachable:
    """declare(), ending the process with the migration steps on stderr (status 1)."""
    try:
        return declare(settings)
    except QueueMismatchError as exc:
        refusal = mismatch_message(settings, str(exc), exc.name, replaceable=exc.replaceable)
        raise SystemExit(f"Taskline {process} refuses to start: {refusal}") from None
