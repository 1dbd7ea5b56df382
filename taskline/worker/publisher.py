"""Publishing a task's turn in line: by name, persistent, confirmed by RabbitMQ.

Blocking (it waits for the publisher confirm): the scheduler's, which republishes turns and
stops tasks; the API publishes with its own asyncio producer (api.producer). Connection
problems become BrokerUnavailableError after a short, bounded retry.
"""

from typing import Any

from amqp.exceptions import AMQPError
from kombu.exceptions import OperationalError

from taskline.core.records import TURN_HEADER
from taskline.core.settings import Settings
from taskline.worker.celery_app import create_celery_app

_BROKER_ERRORS = (OperationalError, AMQPError, OSError, TimeoutError)


class BrokerUnavailableError(Exception):
    """RabbitMQ could not be reached or did not confirm the message."""


class Publisher:
    """Sends tasks by name to the durable queue, and asks the worker to stop one."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.app = create_celery_app(settings, with_backend=False)
        self._retry_policy = {
            "max_retries": 1,
            "interval_start": 0,
            "interval_step": 0.5,
            "interval_max": 0.5,
        }

    def publish(
        self,
        task_id: str,
        name: str,
        params: dict[str, Any],
        priority: int,
        turn: int,
        queue: str | None = None,
    ) -> None:
        """Send one turn of a task to its line's queue (by default the main line's) and wait
        until RabbitMQ has stored it."""
        queue = queue or self.settings.queue
        try:
            self.app.send_task(
                name,
                kwargs=params,
                task_id=task_id,
                priority=priority,
                queue=queue,
                routing_key=queue,
                headers={TURN_HEADER: str(turn)},
                retry=True,
                retry_policy=self._retry_policy,
                confirm_timeout=self.settings.connect_timeout * 2,
            )
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailableError(str(exc)) from exc

    def ready(self, queue: str | None = None) -> int:
        """How many messages wait in a line's queue (the main line's), ready to be delivered."""
        try:
            with self.app.connection_for_write() as connection:
                # kombu's stub names only the abstract channel; py-amqp's declares queues.
                declared = connection.default_channel.queue_declare(  # type: ignore[attr-defined]
                    queue=queue or self.settings.queue, passive=True
                )
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailableError(str(exc)) from exc
        return int(declared.message_count)

    def terminate(self, task_id: str) -> None:
        """Kill the pool child running a task; the worker itself lives on."""
        try:
            self.app.control.revoke(task_id, terminate=True, signal="SIGKILL")
        except _BROKER_ERRORS as exc:
            raise BrokerUnavailableError(str(exc)) from exc

    def close(self) -> None:
        """Release pooled broker connections."""
        self.app.close()
