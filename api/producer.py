"""The API's side of publishing: the blocking publisher run off the event loop, errors as 503."""

from typing import Any

from anyio import to_thread

from api.errors import UnavailableError
from worker.publisher import BrokerUnavailableError, Publisher
from worker.settings import Settings


class Producer:
    """Publishes tasks by name to the durable queue, with confirms."""

    def __init__(self, settings: Settings) -> None:
        self.publisher = Publisher(settings)

    async def publish(
        self, task_id: str, name: str, params: dict[str, Any], priority: int, turn: int
    ) -> None:
        """Send the task and wait for RabbitMQ to confirm it is stored."""
        try:
            await to_thread.run_sync(self.publisher.publish, task_id, name, params, priority, turn)
        except BrokerUnavailableError as exc:
            raise UnavailableError("RabbitMQ is unavailable, try again shortly") from exc

    async def consumers(self) -> int | None:
        """How many workers consume the task queue; None when RabbitMQ cannot be reached."""
        return await to_thread.run_sync(self.publisher.consumers)

    def close(self) -> None:
        self.publisher.close()
