"""One embedded Celery worker for the integration tests that need a worker but no process.

It is pytest-celery's embedded worker (Celery's `start_worker`: the real consumer, execution
and result backend, in a thread of the test process, solo pool) on Taskline's own Celery app,
over the real RabbitMQ and Redis, under a queue and key prefix of its own. Shared by the whole
session: it takes about ten seconds to shut down over AMQP.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
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


@pytest.fixture(scope="session")
def embedded() -> Iterator[Embedded]:
    settings = settings_of(isolated_env(TASKLINE_PROGRESS_INTERVAL="0.05"))
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


@pytest.fixture
def keys() -> Iterator[Keys]:
    """Key names under a prefix of this test's own; its keys are deleted afterwards."""
    settings = settings_of(isolated_env())
    yield Keys(settings.key_prefix)
    remove(settings.broker_url, settings.redis_url, [], f"{settings.key_prefix}*")


@pytest.fixture
def client() -> Iterator[redis.Redis]:
    with redis.Redis(decode_responses=True) as client:
        yield client


@pytest.fixture
def transitions(client: redis.Redis, keys: Keys) -> Transitions:
    return Transitions(client, keys)
