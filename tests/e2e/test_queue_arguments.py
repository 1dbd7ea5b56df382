"""A queue declared earlier with other arguments: replaced when empty and unused, else every
process refuses to start, saying how to migrate; no message is ever lost."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection

from taskline.core.line_queue import QUEUE_ARGUMENTS, Migrated, declare
from tests.processes import (
    api_command,
    isolated_env,
    scheduler_command,
    settings_of,
    start,
    worker_command,
)
from tests.support import BROKER_URL, REDIS_URL, free_port, remove, run_name

pytestmark = pytest.mark.e2e

OLD_ARGUMENTS = {"x-max-priority": 5}  # as an older release, or another tool, declared it


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue name of the test's own, removed afterwards."""
    name = run_name("args-")
    try:
        yield name
    finally:
        remove(BROKER_URL, REDIS_URL, [name], f"{name}:*")


def declare_old(name: str, messages: int) -> None:
    with Connection(BROKER_URL) as connection:
        channel = connection.channel()
        channel.queue_declare(name, durable=True, auto_delete=False, arguments=OLD_ARGUMENTS)
        for n in range(messages):
            channel.basic_publish(channel.prepare_message(f"turn {n}".encode()), routing_key=name)


def counts(name: str) -> tuple[int, int]:
    """Messages and consumers of the queue (passive: whatever its arguments)."""
    with Connection(BROKER_URL) as connection:
        _, messages, consumers = connection.channel().queue_declare(name, passive=True)
    return messages, consumers


def has_taskline_arguments(name: str) -> bool:
    with Connection(BROKER_URL) as connection:
        try:
            connection.channel().queue_declare(
                name, durable=True, auto_delete=False, arguments=QUEUE_ARGUMENTS
            )
        except PreconditionFailed:
            return False
    return True


@pytest.mark.timeout(120)
def test_each_process_refuses_a_queue_with_messages_and_other_arguments(
    queue: str, tmp_path: Path
) -> None:
    declare_old(queue, messages=2)
    env = isolated_env(TASKLINE_QUEUE=queue, TASKLINE_KEY_PREFIX=f"{queue}:")
    commands = {
        "worker": worker_command(),
        "API": api_command(free_port()),
        "scheduler": scheduler_command(),
    }
    procs = {name: start(cmd, env, tmp_path / f"{name}.log") for name, cmd in commands.items()}
    for name, proc in procs.items():
        assert proc.wait(60) != 0, name
        log = (tmp_path / f"{name}.log").read_text()
        assert f"Taskline {name} refuses to start: RabbitMQ's queue '{queue}'" in log, log
        assert "inequivalent arg 'x-max-priority'" in log, log
        assert f"`rabbitmqctl -p / delete_queue {queue}`" in log, log
        assert "list_queues name messages consumers" in log, log
    # Nothing was taken from the queue, nor attached to it.
    assert counts(queue) == (2, 0)
    assert not has_taskline_arguments(queue)


def test_an_empty_unused_queue_with_other_arguments_is_replaced(queue: str) -> None:
    declare_old(queue, messages=0)
    assert not has_taskline_arguments(queue)
    settings = settings_of(isolated_env(TASKLINE_QUEUE=queue))
    outcome = declare(settings)
    assert isinstance(outcome, Migrated), outcome
    assert "x-max-priority" in outcome.refusal
    assert has_taskline_arguments(queue)
    assert counts(queue) == (0, 0)
