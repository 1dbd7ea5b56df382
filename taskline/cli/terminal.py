"""Server text reaches the terminal as text: control characters shown escaped, never markup.

A result, a param, a task's name, an error message: whoever submitted the task chose it.
Printed as it is, an ESC or C1 sequence would clear the screen, retitle the window, write the
clipboard (OSC 52) or hide a link (OSC 8), and Rich would read `[...]` as markup. Every such
text goes through `clean`, and into Rich only as a `Text`, which Rich never parses.
"""

import re

from rich.text import Text

# C0 controls (ESC among them) but tab and newline, DEL, and the C1 controls (CSI, OSC, …).
CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# The same with tab and newline: where a value must stay on one line (a cell, an event line).
LINE_BREAKING = re.compile("[\x00-\x1f\x7f-\x9f]")


def escaped(match: re.Match[str]) -> str:
    """A control character as the four characters `\\x1b`: what came stays visible."""
    return f"\\x{ord(match.group()):02x}"


def clean(text: str, *, one_line: bool = False) -> str:
    """`text` with every control character escaped; tabs and newlines kept unless `one_line`."""
    return (LINE_BREAKING if one_line else CONTROLS).sub(escaped, text)


def text(value: object, style: str = "", *, one_line: bool = True) -> Text:
    """Server text as a Rich `Text`: cleaned, and never read as markup."""
    return Text(clean(str(value), one_line=one_line), style=style)
