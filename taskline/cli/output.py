"""Where output goes: results on stdout (plain or JSON), messages and errors on stderr."""

import json
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, RenderableType

from taskline.cli.exits import CliError
from taskline.cli.terminal import clean

# Raw in JSON text (which escapes only C0): DEL and the C1 controls, which terminals obey too.
UNESCAPED_CONTROLS = re.compile("[\x7f-\x9f]")


def dumps(document: Any) -> str:
    """Compact JSON on one line, non-ASCII kept as it is but for control characters."""
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    return UNESCAPED_CONTROLS.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


def wide() -> int | None:
    """Rich would squeeze tables to 80 columns when stdout is not a terminal: give it room."""
    return None if sys.stdout.isatty() or "COLUMNS" in os.environ else 200


@dataclass
class Output:
    """The command's two streams; with `json` only JSON reaches stdout."""

    json: bool = False
    stdout: Console = field(
        default_factory=lambda: Console(highlight=False, soft_wrap=True, width=wide())
    )
    stderr: Console = field(
        default_factory=lambda: Console(stderr=True, highlight=False, soft_wrap=True)
    )

    def document(self, document: Any) -> None:
        """One JSON document (or one line of a stream of them), flushed at once."""
        sys.stdout.write(dumps(document) + "\n")
        sys.stdout.flush()

    def either(self, document: Any, renderable: RenderableType) -> None:
        """The JSON document with --json, else the view of it."""
        if self.json:
            self.document(document)
        else:
            self.show(renderable)

    def text(self, text: str) -> None:
        """Plain text on stdout, never read as markup, control characters escaped."""
        self.stdout.print(clean(text), markup=False)

    def show(self, renderable: RenderableType) -> None:
        """A Rich table or line on stdout."""
        self.stdout.print(renderable)

    def note(self, text: str) -> None:
        """A message for the person at the terminal, on stderr."""
        self.stderr.print(clean(text), markup=False)

    def error(self, error: CliError) -> None:
        """The error on stderr: one line `error: …`, or a JSON object with --json."""
        if self.json:
            sys.stderr.write(dumps(error.as_json()) + "\n")
        else:
            self.stderr.print(f"error: {clean(error.message)}", markup=False, style="red")
        sys.stderr.flush()
