"""Every shell block of the README runs as pasted, against a stack of the test's own.

The blocks run in their order in one shell (`set -euo pipefail`: a variable a block sets is
there for the next, as in a reader's terminal), in a folder holding what a checkout has after
`make run`: a `.env` with the admin's password and `.venv/bin/taskline`. `localhost:8000` is
the stack's address. `curl` fails on any HTTP error status (`--fail-with-body`), so a pasted
call that answers 401, 404 or 422 fails the test. A block that cannot run here (it starts the
stack, changes the deployment, or runs until Ctrl-C) says why in an HTML comment right above
it: `<!-- readme-test: not run (why) -->`.
"""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import PASSWORDS, Stack
from tests.support import ROOT

pytestmark = pytest.mark.e2e

README = ROOT / "README.md"
SHELLS = ("sh", "bash", "shell", "console")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.M | re.S)
NOT_RUN = re.compile(r"<!-- readme-test: not run \((?P<why>.+?)\) -->\n$")
MARKER = "<!-- readme-test:"
TASKLINE = Path(sys.executable).with_name("taskline")


@dataclass(frozen=True)
class Block:
    line: int  # of its opening fence
    text: str
    why_not_run: str | None


def shell_blocks(readme: str) -> list[Block]:
    """The README's shell blocks, in order, each with the reason it is not run, if any."""
    found = []
    for fence in FENCE.finditer(readme):
        if fence[1] not in SHELLS:
            continue
        before = readme[: fence.start()]
        marker = NOT_RUN.search(before[-300:])
        found.append(Block(before.count("\n") + 1, fence[2], marker["why"] if marker else None))
    return found


def test_every_marker_stands_right_above_a_shell_block_and_says_why() -> None:
    readme = README.read_text()
    blocks = shell_blocks(readme)
    assert sum(block.why_not_run is not None for block in blocks) == readme.count(MARKER)
    assert sum(block.why_not_run is None for block in blocks) >= 4


def test_a_marker_away_from_its_block_does_not_count() -> None:
    text = "<!-- readme-test: not run (why) -->\n\nprose\n```sh\nfalse\n```\n"
    assert shell_blocks(text) == [Block(4, "false\n", None)]
    marked = "<!-- readme-test: not run (starts (a) stack) -->\n```sh\nfalse\n```\n"
    assert shell_blocks(marked)[0].why_not_run == "starts (a) stack"


def script_of(blocks: list[Block], address: str) -> str:
    """One bash script of the blocks that run, each announced on stderr."""
    parts = ["set -euo pipefail"]
    for block in blocks:
        if block.why_not_run is None:
            parts.append(f"echo '@@ README.md line {block.line}' >&2")
            parts.append(block.text.replace("localhost:8000", address))
    return "\n".join(parts) + "\n"


@pytest.fixture
def checkout(tmp_path: Path) -> Callable[[Stack], dict[str, str]]:
    """A folder as `make run` leaves a checkout (its `.env`, `.venv/bin/taskline`), a `curl`
    that fails on HTTP errors first on the PATH; the environment a reader's shell has."""

    def make(stack: Stack) -> dict[str, str]:
        (tmp_path / ".env").write_text(f"TASKLINE_ADMIN_PASSWORD={PASSWORDS['admin']}\n")
        venv_bin = tmp_path / ".venv" / "bin"
        venv_bin.mkdir(parents=True)
        (venv_bin / "taskline").symlink_to(TASKLINE)
        shims = tmp_path / "shims"
        shims.mkdir()
        curl = shims / "curl"
        curl.write_text(f'#!/bin/sh\nexec {shutil.which("curl")} --fail-with-body "$@"\n')
        curl.chmod(0o755)
        env = {k: v for k, v in os.environ.items() if not k.startswith("TASKLINE_")}
        env.update(
            PATH=f"{shims}:{venv_bin}:{env['PATH']}",
            TASKLINE_URL=stack.url,
            XDG_CONFIG_HOME=str(tmp_path / "config"),
            PYTHONPATH=str(ROOT),  # the installed command runs this checkout's package
            COLUMNS="120",
        )
        return env

    return make


def test_the_readme_shell_blocks_run_as_pasted(
    make_stack: Callable[..., Stack],
    checkout: Callable[[Stack], dict[str, str]],
    tmp_path: Path,
) -> None:
    stack = make_stack()
    stack.start()
    blocks = shell_blocks(README.read_text())
    script = script_of(blocks, stack.url.removeprefix("http://"))
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        env=checkout(stack),
        capture_output=True,
        text=True,
        timeout=240,
    )
    ran = re.findall(r"@@ README.md line (\d+)", done.stderr)
    where = f"README.md line {ran[-1]}" if ran else "the start"
    assert done.returncode == 0, (
        f"the block at {where} failed (exit {done.returncode}):\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    )
    assert len(ran) == sum(block.why_not_run is None for block in blocks)
    # what the blocks say they show, shown: the quick start's pi, the walk-through's result
    assert "3.1415926" in done.stdout
    assert '"state":"SUCCESS"' in done.stdout


def test_a_pasted_call_that_is_refused_fails_the_run(
    make_stack: Callable[..., Stack],
    checkout: Callable[[Stack], dict[str, str]],
    tmp_path: Path,
) -> None:
    stack = make_stack()
    stack.start("api")
    address = stack.url.removeprefix("http://")
    unauthenticated = [Block(1, "curl -s localhost:8000/tasks\n", None)]
    done = subprocess.run(
        ["bash", "-c", script_of(unauthenticated, address)],
        cwd=tmp_path,
        env=checkout(stack),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 22  # curl's exit for an HTTP error
    assert "detail" in done.stdout
