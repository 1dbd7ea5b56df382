"""Text tasks' pure functions."""

import regex

_GRAPHEME = regex.compile(r"\X")


def reverse_graphemes(text: str) -> str:
    """Reverse by grapheme cluster: combining accents, emoji sequences and flags stay whole."""
    return "".join(reversed(_GRAPHEME.findall(text)))
