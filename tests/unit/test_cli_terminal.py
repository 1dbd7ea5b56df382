"""What the server sends reaches the terminal as text: no control sequence, no Rich markup.

A result, a param, a task's name or an error message is whatever a user submitted; printed as
it is, it could clear the screen, retitle the window, write the clipboard (OSC 52), hide a
link (OSC 8), or style and link itself through Rich markup.
"""

import io
import json
import re
from typing import Any

import pytest
from rich.console import Console, RenderableType

from taskline.cli.exits import CliError, ExitCode
from taskline.cli.follow import Bar
from taskline.cli.output import Output, dumps
from taskline.cli.stats import render
from taskline.cli.stream import Event
from taskline.cli.views import detail, listing, summary
from taskline.cli.watch import Board, event_line

MARKUP = "[bold red]loud[/bold red][link=http://example.invalid]click[/link]"
ESCAPES = (
    "\x1b[2J\x1b[H"  # clear the screen
    "\x1b]0;pwned\x07"  # window title
    "\x1b]52;c;ZXZpbA==\x07"  # clipboard write
    "\x1b]8;;http://example.invalid\x1b\\link\x1b]8;;\x1b\\"  # hyperlink
    "\x9b31m\x9d0;c1\x9c"  # C1 CSI and OSC
    "\r\x08\x00\x7f"
)
HOSTILE = f"{ESCAPES}{MARKUP}"
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
FORBIDDEN = ("\x1b]", "\x1b[2J", "\x1b[H", "\x07", "\x9b", "\x9d", "\r", "\x08", "\x00", "\x7f")


def task(**fields: Any) -> dict[str, Any]:
    return {
        "id": "6f1c1c1e-0000-4000-8000-000000000000",
        "name": HOSTILE,
        "state": "FAILURE",
        "owner": HOSTILE,
        "priority": 5,
        "params": {"text": HOSTILE},
        "queued_at": "2026-01-01T00:00:00+00:00",
        "progress": {"percent": 50.0, "intermediate": HOSTILE},
        "error": {"type": HOSTILE, "message": HOSTILE},
        "errors": [{"type": HOSTILE, "message": HOSTILE, "attempt": 1, "at": HOSTILE}],
        "result": HOSTILE,
        "worker": HOSTILE,
        **fields,
    }


def printed(renderable: RenderableType, terminal: bool) -> str:
    """What a console writes for it: a terminal with colours, or plain text."""
    out = io.StringIO()
    console = Console(
        file=out,
        force_terminal=terminal,
        color_system="truecolor" if terminal else None,
        width=1000,
        highlight=False,  # as cli.output's consoles
    )
    console.print(renderable)
    return out.getvalue()


def assert_inert(text: str) -> None:
    for sequence in FORBIDDEN:
        assert sequence not in text, (sequence, text)
    assert MARKUP in text.replace("\n", ""), text  # shown, not read


VIEWS = {
    "detail": lambda: detail(task()),
    "summary": lambda: summary(task()),
    "listing": lambda: listing([task(), task(state="QUEUED", queue_position=2)]),
    "event line": lambda: event_line({**task(), "kind": "ended", "attempts": 2}),
    "stats": lambda: render(
        {
            "cpu": {"total": 1.0, "per_core": [1.0]},
            "memory": {},
            "partitions": [{"mountpoint": HOSTILE, "device": HOSTILE, "percent": 1.0}],
        }
    ),
}


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
@pytest.mark.parametrize("view", VIEWS.values(), ids=VIEWS.keys())
def test_views_show_server_text_as_text(view: Any, terminal: bool) -> None:
    assert_inert(printed(view(), terminal))


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "pipe"])
def test_the_watch_board_and_the_follow_bar_show_server_text_as_text(terminal: bool) -> None:
    board = Board()
    lines = board.apply(Event("snapshot", "1-0", {"running": [task(state="PROGRESS")]}))
    lines += board.apply(Event("task", "2-0", {**task(state="PROGRESS"), "kind": "progress"}))
    for line in lines:
        assert_inert(printed(line, terminal))
    assert_inert(printed(board.renderable(), terminal))
    output = Output()
    output.stderr = Console(
        file=io.StringIO(), force_terminal=terminal, color_system=None, width=400, highlight=False
    )
    bar = Bar(output, task(state="QUEUED", queue_position=1))
    bar.update(task(state="PROGRESS"))
    assert_inert(printed(bar.progress.get_renderable(), terminal))


def test_plain_output_keeps_lines_and_tabs_and_shows_the_rest_escaped() -> None:
    out = io.StringIO()
    output = Output()
    output.stdout = Console(file=out, force_terminal=True, width=400, highlight=False, tab_size=1)
    output.text(f"a\tb\nc{HOSTILE}")
    text = out.getvalue()
    assert text.startswith("a b\nc")  # the tab expanded by Rich, the line kept
    assert "\\x1b[2J" in text  # shown, so that what came is not hidden
    assert_inert(text)


def test_notes_and_errors_on_stderr_show_server_text_as_text() -> None:
    out = io.StringIO()
    output = Output()
    output.stderr = Console(file=out, force_terminal=True, width=400, highlight=False)
    output.note(HOSTILE)
    output.error(CliError(HOSTILE, ExitCode.HTTP))
    assert_inert(out.getvalue())


def test_json_output_escapes_every_control_character_and_keeps_the_value() -> None:
    line = dumps({"result": HOSTILE})
    assert not CONTROL.search(line), line
    assert json.loads(line) == {"result": HOSTILE}
