"""The result backend's one-script state writes store what Celery's own backend stores.

Both backends write on the real Redis under this test's own key prefix; what they store and
publish is read back and compared, and a late write never overwrites a SUCCESS.
"""

import json
import uuid
import warnings
from collections.abc import Iterator

import pytest
import redis
from celery import states
from celery.backends.redis import RedisBackend

from taskline.core.settings import Settings
from taskline.worker.backend import TasklineRedisBackend
from taskline.worker.celery_app import TasklineCelery, create_celery_app
from tests.processes import isolated_env, settings_of

pytestmark = pytest.mark.integration

# Differ by construction: when each write happened.
PER_WRITE = {"date_done"}


@pytest.fixture
def settings() -> Settings:
    return settings_of(isolated_env())


@pytest.fixture
def client(settings: Settings) -> Iterator[redis.Redis]:
    """A Redis client; this test's keys are deleted afterwards."""
    with redis.Redis.from_url(settings.redis_url) as client:
        yield client
        for key in client.scan_iter(f"{settings.key_prefix}*"):
            client.delete(key)


@pytest.fixture
def app(settings: Settings) -> TasklineCelery:
    return create_celery_app(settings)


def stored(client: redis.Redis, backend: RedisBackend, task_id: str) -> dict:
    raw = client.get(backend.get_key_for_task(task_id))
    assert raw is not None
    return json.loads(raw)


def test_app_uses_the_one_script_backend(app: TasklineCelery) -> None:
    assert type(app.backend) is TasklineRedisBackend
    key = app.backend.get_key_for_task("x")
    assert key.decode() == f"{app.settings.key_prefix}celery-task-meta-x"


def test_writes_store_and_publish_what_celerys_backend_does(
    app: TasklineCelery, client: redis.Redis
) -> None:
    stock = RedisBackend(app=app, url=app.settings.redis_url)
    ours, theirs = str(uuid.uuid4()), str(uuid.uuid4())
    listener = client.pubsub()
    listener.subscribe(app.backend.get_key_for_task(ours), stock.get_key_for_task(theirs))
    for writes in (
        (states.STARTED, {"pid": 1, "hostname": "h"}),
        ("PROGRESS", {"percent": 50.0, "intermediate": "3.14"}),
        (states.SUCCESS, "olleh"),
    ):
        app.backend.store_result(ours, writes[1], writes[0])
        with warnings.catch_warnings():  # Celery's own backend still calls redis-py's setex
            warnings.simplefilter("ignore", DeprecationWarning)
            stock.store_result(theirs, writes[1], writes[0])
        mine, stock_meta = stored(client, app.backend, ours), stored(client, stock, theirs)
        assert {k: v for k, v in mine.items() if k not in PER_WRITE | {"task_id"}} == {
            k: v for k, v in stock_meta.items() if k not in PER_WRITE | {"task_id"}
        }
        assert mine["task_id"] == ours
    ttl = client.ttl(app.backend.get_key_for_task(ours))
    assert 0 < ttl <= app.settings.retention_seconds
    assert abs(ttl - client.ttl(stock.get_key_for_task(theirs))) <= 1
    published = list(iter(lambda: listener.get_message(timeout=1), None))
    listener.close()
    by_channel: dict[str, list[str]] = {}
    for message in published:
        if message["type"] == "message":
            by_channel.setdefault(message["channel"].decode(), []).append(
                json.loads(message["data"])["status"]
            )
    assert list(by_channel.values()) == [["STARTED", "PROGRESS", "SUCCESS"]] * 2
    assert app.backend.get_task_meta(ours)["result"] == "olleh"


def test_a_late_write_never_overwrites_success(app: TasklineCelery, client: redis.Redis) -> None:
    task_id = str(uuid.uuid4())
    app.backend.store_result(task_id, "done", states.SUCCESS)
    app.backend.store_result(task_id, {"pid": 2}, states.STARTED)
    app.backend.store_result(task_id, None, states.FAILURE)
    meta = app.backend.get_task_meta(task_id)
    assert meta["status"] == states.SUCCESS and meta["result"] == "done"
