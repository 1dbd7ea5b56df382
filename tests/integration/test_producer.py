"""The API's asyncio publisher sends exactly the message Celery's own send_task would.

Both publish to a queue of this test's own on the real RabbitMQ; the two messages, and the
task-sent event monitors receive, are read back and compared field by field.
"""

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from kombu import Connection, Exchange, Queue

from taskline.api.errors import UnavailableError
from taskline.api.producer import Producer
from taskline.core.records import TURN_HEADER
from taskline.core.settings import Settings
from taskline.worker.publisher import Publisher
from tests.processes import free_port, isolated_env, settings_of
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

PARAMS = {"text": "héllo", "delay_seconds": 0.0}
# Differ by construction: the publisher's address for RPC replies; the id (task and turn) that
# the asyncio client needs to match a returned message to its publish.
PER_PUBLISHER = {"reply_to", "message_id"}


@pytest.fixture
def settings() -> Iterator[Settings]:
    """Settings with a queue of this test's own, deleted afterwards."""
    settings = settings_of(isolated_env())
    yield settings
    with Connection(settings.broker_url) as conn:
        channel = conn.channel()
        channel.queue_delete(settings.queue)
        channel.exchange_delete(settings.queue)


def take(conn: Connection, queue: str) -> object:
    """The next message of a queue, waiting for it a little."""
    channel = conn.default_channel
    return wait_until(lambda: channel.basic_get(queue, no_ack=True), 10)


def sent_event(conn: Connection, queue: str, task_id: str) -> dict[str, Any]:
    """The task-sent event of this task: the celeryev exchange carries the events of every
    publisher on the broker, other runs' among them."""
    channel = conn.default_channel

    def ours() -> dict[str, Any] | None:
        while (message := channel.basic_get(queue, no_ack=True)) is not None:
            event: dict[str, Any] = json.loads(message.body)
            if event.get("uuid") == task_id:
                return event
        return None

    return wait_until(ours, 10)


def test_message_is_the_one_celery_send_task_builds(settings: Settings) -> None:
    """Headers, properties and body match kombu's publish; the sent event reaches monitors."""
    task_id = str(uuid.uuid4())
    with Connection(settings.broker_url) as conn:
        monitor = Queue(
            f"{settings.queue}-events",
            Exchange("celeryev", type="topic"),
            routing_key="task.sent",
            # Gone with this connection: auto_delete alone waits for a consumer that basic_get
            # never is, and the queue stayed, taking every task-sent event of the broker.
            exclusive=True,
        )
        monitor(conn.default_channel).declare()

        async def publish() -> None:
            producer = Producer(settings)
            try:
                await producer.publish(task_id, "reverse", PARAMS, 7, 3)
            finally:
                await producer.close()

        asyncio.run(publish())
        publisher = Publisher(settings)
        try:
            publisher.publish(task_id, "reverse", PARAMS, 7, 3)
        finally:
            publisher.close()

        ours, celerys = take(conn, settings.queue), take(conn, settings.queue)
        event = sent_event(conn, monitor.name, task_id)

    assert ours.headers == celerys.headers
    assert ours.headers["task"] == "reverse" and ours.headers[TURN_HEADER] == "3"
    assert json.loads(ours.body) == json.loads(celerys.body)
    assert json.loads(ours.body)[:2] == [[], PARAMS]
    for prop in ("content_type", "content_encoding", "delivery_mode", "priority"):
        assert ours.properties[prop] == celerys.properties[prop], prop
    assert ours.properties["delivery_mode"] == 2 and ours.properties["priority"] == 7
    assert ours.properties["correlation_id"] == task_id
    assert {k for k in ours.properties if ours.properties[k] != celerys.properties.get(k)} <= (
        PER_PUBLISHER
    )
    assert event["type"] == "task-sent" and event["uuid"] == task_id
    assert event["name"] == "reverse" and event["queue"] == settings.queue


def test_unreachable_broker_is_a_fast_unavailable_error() -> None:
    """A closed port: UnavailableError within the connect timeout, not a hang."""
    env = isolated_env(
        TASKLINE_BROKER_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}//",
        TASKLINE_CONNECT_TIMEOUT="1",
    )

    async def publish() -> float:
        producer = Producer(settings_of(env))
        began = time.monotonic()
        try:
            with pytest.raises(UnavailableError):
                await producer.publish(str(uuid.uuid4()), "reverse", PARAMS, 5, 1)
            return time.monotonic() - began
        finally:
            await producer.close()

    assert asyncio.run(publish()) < 3


def test_a_broker_url_listing_nodes_publishes_to_the_first_that_answers(
    settings: Settings,
) -> None:
    """`amqp://…;amqp://…`: a node that does not answer (a closed port) is passed over and
    the message is confirmed by the next."""
    down = f"amqp://guest:guest@127.0.0.1:{free_port()}//"
    listed = settings.model_copy(update={"broker_url": f"{down};{settings.broker_url}"})
    task_id = str(uuid.uuid4())

    async def publish() -> None:
        producer = Producer(listed)
        try:
            await producer.publish(task_id, "reverse", PARAMS, 5, 1)
        finally:
            await producer.close()

    asyncio.run(publish())
    with Connection(settings.broker_url) as conn:
        message = take(conn, settings.queue)
    assert message.headers["id"] == task_id  # type: ignore[attr-defined]
