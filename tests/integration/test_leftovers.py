"""The run's end check (tests/conftest.py) sees what a test left behind, and only this run's."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from kombu import Connection, Exchange, Queue

from tests.support import (
    BROKER_URL,
    REDIS_URL,
    RUN_MARK,
    Leftovers,
    leftovers,
    remove,
    remove_local,
    run_name,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def left() -> Iterator[tuple[str, str]]:
    """A queue holding one message, its exchange and a key of this run; another run's key."""
    name = run_name("leftover-")
    other = f"test-{'0' * 8}-leftover-{name[-10:]}"
    with Connection(BROKER_URL) as connection:
        queue = Queue(name, Exchange(name, type="direct"), routing_key=name)
        queue(connection.default_channel).declare()
        connection.Producer().publish({"x": 1}, exchange=name, routing_key=name)
    with redis.Redis.from_url(REDIS_URL) as client:
        client.set(f"{name}:index", 1)
        client.set(f"{other}:index", 1)
    try:
        yield name, other
    finally:
        remove(BROKER_URL, REDIS_URL, [name], f"{name}*")
        remove(BROKER_URL, REDIS_URL, [], f"{other}*")


def test_leftovers_names_this_runs_queues_exchanges_and_keys(left: tuple[str, str]) -> None:
    name, other = left
    found = leftovers(BROKER_URL, REDIS_URL)
    assert found.queues.get(name) == "1", found
    assert name in found.exchanges, found
    assert f"{name}:index" in found.keys, found
    assert not any(other in line for line in found.describe().splitlines()), found
    remove(BROKER_URL, REDIS_URL, [name], f"{name}*")
    after = leftovers(BROKER_URL, REDIS_URL)
    assert name not in after.queues and name not in after.exchanges, after
    assert f"{name}:index" not in after.keys, after


def only(found: Leftovers, mine: set[int | str]) -> Leftovers:
    """The processes and folders of `found` that are in `mine`."""
    return Leftovers(
        processes={pid: line for pid, line in found.processes.items() if pid in mine},
        folders=[folder for folder in found.folders if folder in mine],
    )


def test_leftovers_names_this_runs_processes_and_temporary_folders() -> None:
    """A process naming the run (a worker, a private RabbitMQ node), one that only inherited
    its mark (a redis-server) and a temporary folder named after it (a node's data) are found,
    then gone once removed; another run's are not."""
    name = run_name("leftover-")
    other = f"test-{'0' * 8}-leftover-{name[-10:]}"
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    procs = [
        subprocess.Popen([*sleeper, name]),
        subprocess.Popen(sleeper),
        subprocess.Popen([*sleeper, other], env={**os.environ, RUN_MARK: other}),
    ]
    folders = [Path(tempfile.mkdtemp(prefix=f"{tag}-")) for tag in (name, other)]
    try:
        # Only this test's own: the run's stacks (named after it too) live on meanwhile.
        mine = {p.pid for p in procs} | {str(folder) for folder in folders}
        found = only(leftovers(BROKER_URL, REDIS_URL), mine)
        assert sorted(found.processes) == sorted(p.pid for p in procs[:2]), found
        assert found.folders == [str(folders[0])], found
        assert f"process {procs[0].pid}: " in found.describe(), found.describe()
        remove_local(found)
        assert [p.wait(10) for p in procs[:2]] == [-signal.SIGKILL] * 2
        assert not folders[0].exists()
        assert procs[2].poll() is None and folders[1].exists()
        after = only(leftovers(BROKER_URL, REDIS_URL), mine)
        assert not after.processes and not after.folders, after
    finally:
        for proc in procs:
            proc.kill()
            proc.wait(10)
        for folder in folders:
            shutil.rmtree(folder, ignore_errors=True)
