"""The API's publisher: Celery task messages sent by name over an asyncio AMQP channel.

Celery's `send_task` blocks its thread until RabbitMQ confirms each message, one at a time.
Here Celery still builds the message (`app.amqp.as_task_v2`: protocol 2, JSON, by name, no
task code imported), and aio-pika publishes it on one channel in confirm mode, so the confirms
of many concurrent requests are in flight together and no thread is involved. A message counts
as sent only once RabbitMQ has confirmed it (persistent, mandatory: an unroutable one is an
error, not a silent drop). Any broker trouble becomes a 503 within the connect timeout, and the
next request connects afresh. A failure after the message went out (no confirm, or the
connection lost) is told apart: RabbitMQ may hold the message, so the task must be kept.
A broker URL may list several nodes of a cluster (`amqp://…;amqp://…`, as kombu takes it):
a connection goes to the first that answers, from the one last used on.
"""

import asyncio
import contextlib
import os
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractExchange
from celery.events.event import Event
from celery.utils.nodenames import anon_nodename
from celery.utils.time import utcoffset
from kombu.serialization import dumps as serialize

from taskline.api.errors import UnavailableError, UnconfirmedError
from taskline.core.line_queue import mismatch_message
from taskline.core.records import TURN_HEADER
from taskline.core.settings import Settings, lines_of
from taskline.worker.celery_app import create_celery_app

# Connection failures, closed channels, nacks and returns (DeliveryError), timeouts.
_BROKER_ERRORS = (
    aiormq.exceptions.AMQPError,
    aiormq.exceptions.ChannelInvalidStateError,
    OSError,
    TimeoutError,
)


def json_message(payload: Any, **properties: Any) -> aio_pika.Message:
    """An AMQP message of `payload` serialised by kombu, as Celery's own publisher would."""
    content_type, encoding, data = serialize(payload, "json")
    body = data.encode(encoding) if isinstance(data, str) else data
    return aio_pika.Message(
        body, content_type=content_type, content_encoding=encoding, **properties
    )


class Producer:
    """Publishes tasks by name to the durable queue; many confirms in flight at once."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_celery_app(settings, with_backend=False)
        self.queue = self.app.amqp.queues[settings.queue]  # the main line's
        # Every line's queue, on the same exchange.
        self.queues = [self.app.amqp.queues[line.queue] for line in lines_of(settings)]
        self.timeout = settings.connect_timeout
        self.hostname = anon_nodename()
        self.urls = [url.strip() for url in settings.broker_url.split(";") if url.strip()]
        self._url = 0  # the URL to try first: the last that answered
        self._connection: AbstractConnection | None = None
        self._tasks: AbstractExchange | None = None
        self._events: AbstractExchange | None = None
        self._connecting = asyncio.Lock()
        self._closing: set[asyncio.Task[None]] = set()

    async def _connect(self) -> tuple[AbstractExchange, AbstractExchange]:
        """The task and event exchanges on a live connection, declared once per connection."""
        async with self._connecting:
            if self._connection is None or self._connection.is_closed:
                await self._drop()
                connection = await self._open()
                try:
                    self._tasks, self._events = await self._declare(connection)
                except BaseException:
                    await connection.close()
                    raise
                self._connection = connection
            assert self._tasks is not None and self._events is not None
            return self._tasks, self._events

    async def _open(self) -> AbstractConnection:
        """A connection to the first node that answers, from the one last used on."""
        for tried in range(len(self.urls)):
            try:
                return await aio_pika.connect(self.urls[self._url], timeout=self.timeout)
            except _BROKER_ERRORS:
                if tried == len(self.urls) - 1:
                    raise
                self._url = (self._url + 1) % len(self.urls)
        raise AssertionError("a broker URL always names a node")  # the loop returns or raises

    async def _declare(
        self, connection: AbstractConnection
    ) -> tuple[AbstractExchange, AbstractExchange]:
        """The lines' queues, their exchange and Celery's event exchange, as the worker
        declares them."""
        confirmed = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchange = await confirmed.declare_exchange(
            self.queue.exchange.name, aio_pika.ExchangeType.DIRECT, durable=True
        )
        for line in self.queues:
            try:
                queue = await confirmed.declare_queue(
                    line.name, durable=True, arguments=line.queue_arguments
                )
            except aiormq.exceptions.ChannelPreconditionFailed as exc:
                # Replaced since this process started: a 503 saying how to migrate, not "down".
                said = str(exc.args[0] if exc.args else exc)
                raise UnavailableError(mismatch_message(self.settings, said, line.name)) from exc
            await queue.bind(exchange, routing_key=line.routing_key)
        # Task-sent events are for monitors (Flower): not confirmed, like Celery's own.
        fire_and_forget: AbstractChannel = await connection.channel(publisher_confirms=False)
        events = await fire_and_forget.declare_exchange(
            self.app.conf.event_exchange, aio_pika.ExchangeType.TOPIC, durable=True
        )
        return exchange, events

    async def _drop(self) -> None:
        """Forget the connection; it is closed in the background, so that a stalled broker
        (which answers nothing, not even the close) cannot hold the request's answer."""
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed:
            closing = asyncio.create_task(self._close(connection))
            self._closing.add(closing)
            closing.add_done_callback(self._closing.discard)

    async def _close(self, connection: AbstractConnection) -> None:
        try:
            await asyncio.wait_for(connection.close(), self.timeout)
        except _BROKER_ERRORS:
            pass

    async def publish(
        self,
        task_id: str,
        name: str,
        params: dict[str, Any],
        priority: int,
        turn: int,
        queue: str | None = None,
    ) -> None:
        """Send one turn of a task to its line's queue (by default the main line's) and wait
        until RabbitMQ has stored it (else a 503)."""
        queue = queue or self.queue.name
        message = self.app.amqp.as_task_v2(
            task_id,
            name,
            kwargs=params,
            reply_to=self.app.thread_oid,
            create_sent_event=True,
            # As send_task leaves it: the task's own setting decides (the stub says bool only).
            ignore_result=None,  # type: ignore[arg-type]
        )
        headers, properties, body, sent_event = message
        assert sent_event is not None  # asked for with create_sent_event
        headers[TURN_HEADER] = str(turn)
        try:
            async with asyncio.timeout(self.timeout):
                tasks, events = await self._connect()
        except _BROKER_ERRORS as exc:
            await self._drop()
            raise UnavailableError("RabbitMQ is unavailable, try again shortly") from exc
        try:
            async with asyncio.timeout(self.timeout):
                await tasks.publish(
                    json_message(
                        body,
                        headers=headers,
                        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                        priority=priority,
                        correlation_id=properties["correlation_id"],
                        # aiormq matches a returned (unroutable) message to its publish by id.
                        message_id=f"{task_id}.{turn}",
                        reply_to=properties["reply_to"] or None,
                    ),
                    routing_key=queue,
                    mandatory=True,
                )
        except aiormq.exceptions.DeliveryError as exc:
            # Nacked or returned: RabbitMQ said it did not keep the message.
            await self._drop()
            raise UnavailableError("RabbitMQ refused the message, try again shortly") from exc
        except _BROKER_ERRORS as exc:
            # Sent, but no confirm came: RabbitMQ may hold it.
            await self._drop()
            raise UnconfirmedError(task_id) from exc
        # The task is stored; a lost monitoring event must not turn that into a 503.
        with contextlib.suppress(*_BROKER_ERRORS):
            await self._send_event(events, sent_event, queue)

    async def _send_event(
        self, events: AbstractExchange, fields: dict[str, Any], queue: str
    ) -> None:
        """Tell monitors the task was sent, as Celery's own event dispatcher would."""
        fields.update(queue=queue, exchange=self.queue.exchange.name, routing_key=queue)
        event = Event(
            "task-sent",
            hostname=self.hostname,
            utcoffset=utcoffset(),
            pid=os.getpid(),
            clock=self.app.clock.forward(),  # type: ignore[attr-defined]  # the stub lacks it
            **fields,
        )
        await events.publish(
            json_message(
                event,
                delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
            ),
            routing_key="task.sent",
            mandatory=False,
        )

    async def consumers(self, queue: str | None = None) -> int | None:
        """How many workers consume a line's queue (the main line's); None when RabbitMQ
        cannot be reached."""
        try:
            async with asyncio.timeout(self.timeout * 2):
                await self._connect()
                assert self._connection is not None
                channel = await self._connection.channel(publisher_confirms=False)
                try:
                    found = await channel.declare_queue(queue or self.queue.name, passive=True)
                    return found.declaration_result.consumer_count
                finally:
                    if not channel.is_closed:
                        await channel.close()
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return 0
        except _BROKER_ERRORS:
            await self._drop()
            return None

    async def close(self) -> None:
        """Close the broker connection (and wait for any closing in the background)."""
        await self._drop()
        if self._closing:
            await asyncio.wait(set(self._closing))
