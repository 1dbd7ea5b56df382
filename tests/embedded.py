"""One embedded Celery worker on Taskline's own app, for tests that need a worker but no process.

It is pytest-celery's embedded worker (Celery's `start_worker`: the real consumer, execution
and result backend, in a thread of the test process, solo pool) over the real RabbitMQ and
Redis, under a queue and key prefix of its own. It takes about ten seconds to shut down over
AMQP, so a fixture shares it (the integration tests' session, the example package's module).
"""

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis
from celery.contrib.testing.worker import start_worker

from taskline.core.records import Keys
from taskline.core.settings import Settings
from taskline.core.transitions import Transitions
from taskline.worker.celery_app import TasklineCelery, create_celery_app
from taskline.worker.publisher import Publisher
from tests.processes import isolated_env, settings_of
from tests.support import remove


@dataclass
class Embedded:
    """The embedded worker's app, and what tests use to play the API's part."""

    app: TasklineCelery
    settings: Settings
    keys: Keys
    redis: redis.Redis
    transitions: Transitions
    publisher: Publisher


@contextmanager
def embedded_worker(**overrides: str) -> Iterator[Embedded]:
    """The worker running (settings as TASKLINE_* overrides); on leaving, stopped, and its
    queue and keys removed."""
    settings = settings_of(isolated_env(**overrides))
    app = create_celery_app(settings)
    app.loader.import_default_modules()  # the task modules, as a booting worker does
    keys = Keys(settings.key_prefix)
    client = redis.Redis.from_url(settings.redis_url, decode_responses=True)
    publisher = Publisher(settings)
    try:
        with start_worker(
            app, pool="solo", perform_ping_check=False, shutdown_timeout=60, loglevel="WARNING"
        ):
            yield Embedded(app, settings, keys, client, Transitions(client, keys), publisher)
    finally:
        publisher.close()
        app.close()
        client.close()
        remove(settings.broker_url, settings.redis_url, [settings.queue], f"{settings.key_prefix}*")
