"""A queue declared earlier with other arguments: replaced when empty and unused, else every
process refuses to start, saying how to migrate; no message is ever lost. The same between the
two queue types (TASKLINE_QUEUE_TYPE): a classic queue where a quorum one is wanted, and the
other way round, where RabbitMQ deletes a quorum queue only unconditionally, so it is never
replaced, even empty."""

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from amqp.exceptions import PreconditionFailed
from kombu import Connection

from taskline.core.line_queue import (
    QUEUE_ARGUMENTS,
    QUORUM_QUEUE_ARGUMENTS,
    Migrated,
    QueueMismatchError,
    Unreachable,
    declare,
    exit_if_mismatched,
)
from taskline.core.settings import lines_of
from tests.processes import (
    api_command,
    isolated_env,
    scheduler_command,
    settings_of,
    start,
    stop,
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


def declare_old(name: str, messages: int, arguments: dict[str, Any] = OLD_ARGUMENTS) -> None:
    with Connection(BROKER_URL) as connection:
        channel = connection.channel()
        channel.queue_declare(name, durable=True, auto_delete=False, arguments=arguments)
        for n in range(messages):
            channel.basic_publish(channel.prepare_message(f"turn {n}".encode()), routing_key=name)


def counts(name: str) -> tuple[int, int]:
    """Messages and consumers of the queue (passive: whatever its arguments)."""
    with Connection(BROKER_URL) as connection:
        _, messages, consumers = connection.channel().queue_declare(name, passive=True)
    return messages, consumers


def has_taskline_arguments(name: str, arguments: dict[str, Any] = QUEUE_ARGUMENTS) -> bool:
    with Connection(BROKER_URL) as connection:
        try:
            connection.channel().queue_declare(
                name, durable=True, auto_delete=False, arguments=arguments
            )
        except PreconditionFailed:
            return False
    return True


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("queue_type", "found", "refusal"),
    [
        ("classic", OLD_ARGUMENTS, "inequivalent arg 'x-max-priority'"),
        ("quorum", QUEUE_ARGUMENTS, "inequivalent arg 'x-max-priority'"),
        ("classic", QUORUM_QUEUE_ARGUMENTS, "inequivalent arg 'x-queue-type'"),
    ],
    ids=["older-classic", "classic-for-quorum", "quorum-for-classic"],
)
def test_each_process_refuses_a_queue_with_messages_and_other_arguments(
    queue: str, tmp_path: Path, queue_type: str, found: dict[str, Any], refusal: str
) -> None:
    declare_old(queue, messages=2, arguments=found)
    env = isolated_env(
        TASKLINE_QUEUE=queue, TASKLINE_KEY_PREFIX=f"{queue}:", TASKLINE_QUEUE_TYPE=queue_type
    )
    commands = {
        "worker": worker_command(),
        "API": api_command(free_port()),
        "scheduler": scheduler_command(),
    }
    procs = {name: start(cmd, env, tmp_path / f"{name}.log") for name, cmd in commands.items()}
    try:
        for name, proc in procs.items():
            assert proc.wait(60) != 0, name
            log = (tmp_path / f"{name}.log").read_text()
            assert f"Taskline {name} refuses to start: RabbitMQ's queue '{queue}'" in log, log
            assert refusal in log, log
            assert f"`rabbitmqctl -p / delete_queue {queue}`" in log, log
            assert "list_queues name messages consumers" in log, log
    finally:
        for proc in procs.values():
            stop(proc)  # one that started after all (a failure) takes nothing more
    # Nothing was taken from the queue, nor attached to it.
    assert counts(queue) == (2, 0)
    assert has_taskline_arguments(queue, found)


def test_an_empty_unused_queue_with_other_arguments_is_replaced(queue: str) -> None:
    declare_old(queue, messages=0)
    assert not has_taskline_arguments(queue)
    settings = settings_of(isolated_env(TASKLINE_QUEUE=queue))
    outcome = declare(settings)
    assert isinstance(outcome, Migrated), outcome
    assert "x-max-priority" in outcome.refusal
    assert has_taskline_arguments(queue)
    assert counts(queue) == (0, 0)


def test_an_empty_unused_classic_queue_is_replaced_by_a_quorum_one(queue: str) -> None:
    declare_old(queue, messages=0, arguments=QUEUE_ARGUMENTS)
    settings = settings_of(isolated_env(TASKLINE_QUEUE=queue, TASKLINE_QUEUE_TYPE="quorum"))
    outcome = declare(settings)
    assert isinstance(outcome, Migrated), outcome
    assert has_taskline_arguments(queue, QUORUM_QUEUE_ARGUMENTS)
    assert counts(queue) == (0, 0)


@pytest.mark.parametrize(
    ("queue_type", "found"),
    [("classic", QUORUM_QUEUE_ARGUMENTS), ("quorum", {"x-queue-type": "quorum"})],
    ids=["quorum-for-classic", "quorum-without-single-consumer"],
)
def test_a_quorum_queue_with_other_arguments_is_refused_even_empty(
    queue: str, queue_type: str, found: dict[str, Any]
) -> None:
    """RabbitMQ refuses to delete a quorum queue only if it is empty and unused (540
    NOT_IMPLEMENTED): no process replaces it, and the steps say to delete it once drained."""
    declare_old(queue, messages=0, arguments=found)
    settings = settings_of(isolated_env(TASKLINE_QUEUE=queue, TASKLINE_QUEUE_TYPE=queue_type))
    with pytest.raises(QueueMismatchError) as refused:
        declare(settings)
    assert refused.value.replaceable is False
    with pytest.raises(SystemExit) as exited:
        exit_if_mismatched(settings, "worker")
    said = str(exited.value)
    assert "stop those workers, run `rabbitmqctl -p / delete_queue" in said, said
    assert "replaces the empty queue itself" not in said, said
    assert has_taskline_arguments(queue, found)


def test_every_lines_queue_is_declared_over_one_connection_and_one_may_be_replaced(
    queue: str,
) -> None:
    """A refused declare closes its channel, not the connection the next line's goes over."""
    slow = f"{queue}.slow"
    declare_old(slow, messages=0)  # the first line declared
    try:
        lines = "slow=reverse;default=*"
        settings = settings_of(isolated_env(TASKLINE_QUEUE=queue, TASKLINE_LINES=lines))
        assert [line.queue for line in lines_of(settings)] == [slow, queue]
        outcome = declare(settings)
        assert isinstance(outcome, Migrated), outcome
        assert has_taskline_arguments(queue) and has_taskline_arguments(slow)
    finally:
        remove(BROKER_URL, REDIS_URL, [slow], f"{slow}:*")


def test_a_stalled_broker_is_waited_for_once_whatever_the_number_of_lines() -> None:
    """It accepts the connection and answers nothing: every process starts after one
    connect timeout, not one per line."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"amqp://guest:guest@127.0.0.1:{silent.getsockname()[1]}//"
        env = isolated_env(
            TASKLINE_BROKER_URL=url,
            TASKLINE_CONNECT_TIMEOUT="1",
            TASKLINE_LINES="slow=leibniz_pi;fast=reverse;default=*",
        )
        began = time.monotonic()
        outcome = declare(settings_of(env))
        took = time.monotonic() - began
    assert isinstance(outcome, Unreachable), outcome
    assert took < 2.0, took  # three lines, 1 s each before
