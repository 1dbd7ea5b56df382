"""Shared fixtures: one isolated stack (worker, scheduler and API processes) per session."""

from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.processes import Stack

FAULTS = Path(__file__).parent / "faults"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/faults/ is a fault test (`-m faults` selects them)."""
    for item in items:
        if FAULTS in item.path.parents:
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Real worker, scheduler and uvicorn processes on their own queue and prefix."""
    stack = Stack(tmp_path_factory.mktemp("stack"))
    try:
        stack.start()
        yield stack
    finally:
        stack.close()


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """Stacks of the test's own (settings as TASKLINE_* overrides), closed afterwards."""
    stacks: list[Stack] = []

    def make(**overrides: str) -> Stack:
        stacks.append(Stack(tmp_path / str(len(stacks)), **overrides))
        stacks[-1].logs.mkdir()
        return stacks[-1]

    try:
        yield make
    finally:
        for stack in stacks:
            stack.close()


@pytest.fixture
def own_stack(make_stack: Callable[..., Stack]) -> Stack:
    """A stack of the test's own, for tests that restart processes."""
    return make_stack()


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    """An HTTP client of the session's API."""
    with stack.client() as client:
        yield client
