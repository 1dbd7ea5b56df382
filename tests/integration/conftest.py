"""The integration tests' fixtures: one embedded worker (tests.embedded) for the session, and
key names, a Redis client and transitions under a prefix of each test's own."""

from collections.abc import Iterator

import pytest
import redis

from taskline.core.records import Keys
from taskline.core.transitions import Transitions
from tests.embedded import Embedded, embedded_worker
from tests.processes import isolated_env, settings_of
from tests.support import remove


@pytest.fixture(scope="session")
def embedded() -> Iterator[Embedded]:
    with embedded_worker() as worker:
        yield worker


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
