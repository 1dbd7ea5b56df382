"""A Redis holding serial ledgers of the old layout stops the API and the worker at start.

The real entry points (the API's factory, `celery worker`), each in a process of its own,
against the real Redis, under a prefix of the test's own.
"""

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from taskline.core.layout import old_ledgers
from taskline.core.records import Keys
from tests.processes import isolated_env, settings_of, start, stop, worker_command
from tests.support import ROOT, remove

pytestmark = pytest.mark.e2e


@pytest.fixture
def env() -> Iterator[dict[str, str]]:
    """Settings of the test's own queue and prefix; its keys (and a queue a worker that went
    on would have made) are deleted afterwards."""
    env = isolated_env()
    yield env
    settings = settings_of(env)
    remove(settings.broker_url, settings.redis_url, [settings.queue], f"{settings.key_prefix}*")


def start_api(env: dict[str, str]) -> tuple[int, str]:
    """The API's factory in a process of its own: its status and output."""
    code = "from taskline.api.main import create_app; create_app(); print('ok')"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr


def start_worker(env: dict[str, str], log: Path) -> tuple[int | None, str]:
    """A real worker: its status once it exits (None if it is still running after 30 s, then
    stopped with its pool) and its output."""
    proc = start(worker_command(), env, log)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    finally:
        status = proc.poll()
        stop(proc)
    return status, log.read_text(errors="replace")


def test_the_api_and_the_worker_refuse_an_old_serial_ledger_naming_the_move(
    env: dict[str, str], tmp_path: Path
) -> None:
    keys = Keys(settings_of(env).key_prefix)
    old = f"{keys.prefix}serials:AB"
    move = f"rename each {keys.prefix}serials:MODEL to {keys.ledger('serials:')}MODEL"
    with redis.Redis.from_url(settings_of(env).redis_url, decode_responses=True) as client:
        client.zadd(old, {"1:10:t1": 1})
        for status, said in (start_api(env), start_worker(env, tmp_path / "worker.log")):
            assert status == 1, said
            assert "refuses to start: Redis holds serial ledgers in a layout" in said
            assert f"({old})" in said and move in said
            assert "ok" not in said.splitlines() and "Traceback" not in said
        assert client.zrange(old, 0, -1) == ["1:10:t1"]  # left as it was


def test_the_current_layout_and_look_alike_keys_are_no_old_ledger(env: dict[str, str]) -> None:
    settings = settings_of(env)
    keys = Keys(settings.key_prefix)
    with redis.Redis.from_url(settings.redis_url, decode_responses=True) as client:
        client.zadd(keys.ledger("serials:AB"), {"1:10:t1": 1})
        client.set(f"{keys.prefix}serial-checks:user:alice", 1)
        client.set(f"{keys.prefix}serials:not-a-ledger", 1)  # not a sorted set
        client.zadd(f"other-{keys.prefix}serials:AB", {"1:10:t1": 1})  # another prefix
        try:
            assert old_ledgers(client, keys) == []
            assert start_api(env) == (0, "ok\n")
        finally:
            client.delete(f"other-{keys.prefix}serials:AB")
