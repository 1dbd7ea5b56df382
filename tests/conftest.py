"""Shared fixtures: one isolated stack (worker, scheduler and API processes) per session; at
the session's end, a check that the run left nothing in the shared RabbitMQ and Redis."""

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import Stack
from tests.support import (
    BROKER_URL,
    MINTED,
    REDIS_URL,
    RUN_PREFIX,
    leftovers,
    remove,
    remove_local,
    wait_until,
)

FAULTS = Path(__file__).parent / "faults"
# Exclusive and auto-delete queues of a process just stopped may take a moment to go.
LEFTOVER_GRACE_SECONDS = 10
LEFT = pytest.StashKey[str]()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/faults/ is a fault test (`-m faults` selects them)."""
    for item in items:
        if FAULTS in item.path.parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Real worker, scheduler and uvicorn processes on their own queue and prefix."""
    with Stack(tmp_path_factory.mktemp("stack")) as stack:
        stack.start()
        yield stack


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Stacks of the test's own (settings as TASKLINE_* overrides), closed afterwards (each,
    even when another's closing failed)."""
    made = 0
    with contextlib.ExitStack() as closing:

        def make(**overrides: str) -> Stack:
            nonlocal made
            stack = Stack(tmp_path / str(made), **overrides)
            made += 1
            closing.callback(stack.close)
            stack.logs.mkdir()
            return stack

        yield make


@pytest.fixture
def own_stack(make_stack: Callable[..., Stack]) -> Stack:
    """A stack of the test's own, for tests that restart processes."""
    return make_stack()


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client of the session's API."""
    with stack.client() as client:
        yield client


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Fail the run when it left queues, exchanges or keys of its own (RUN_PREFIX) in the
    shared RabbitMQ or Redis, or processes or temporary folders named after it, naming them;
    they are deleted either way.

    Only this run's names are looked at: others use the same services at the same time.
    The shared services are asked only when a test of this run named a queue or a key
    prefix (run_name): a run of unit tests leaves them alone."""
    shared = bool(MINTED)
    left = leftovers(BROKER_URL, REDIS_URL, shared=shared)

    def gone() -> bool:
        nonlocal left
        left = leftovers(BROKER_URL, REDIS_URL, shared=shared)
        return not left

    if left:
        with contextlib.suppress(AssertionError):
            wait_until(gone, LEFTOVER_GRACE_SECONDS, interval=1)
    if not left:
        return
    if shared:
        remove(BROKER_URL, REDIS_URL, sorted({*left.queues, *left.exchanges}), f"{RUN_PREFIX}*")
    remove_local(left)
    session.config.stash[LEFT] = (
        f"This run left {len(left.queues)} queues, {len(left.exchanges)} exchanges and "
        f"{len(left.keys)} Redis keys of its own ({RUN_PREFIX}*) in the shared RabbitMQ and "
        f"Redis, {len(left.processes)} processes and {len(left.folders)} temporary folders, "
        "deleted now: a test must remove what it makes.\n" + left.describe()
    )
    if session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name what the run left behind (pytest_sessionfinish found it), just above the totals."""
    left = terminalreporter.config.stash.get(LEFT, None)
    if left is not None:
        terminalreporter.section("left behind by this run", sep="=", red=True)
        terminalreporter.write_line(left, red=True)
