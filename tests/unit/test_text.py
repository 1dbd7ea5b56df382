"""Reversing text by grapheme cluster."""

import pytest

from taskline.builtins.text import reverse_graphemes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("example", "elpmaxe"),
        ("", ""),
        ("noe\u0308l", "le\u0308on"),  # combining diaeresis stays on its e
        ("a👍🏽b", "b👍🏽a"),  # skin-tone modifier stays on its emoji
        ("🇫🇷🇩🇪", "🇩🇪🇫🇷"),  # flags are not split into other flags
        ("👨‍👩‍👧x", "x👨‍👩‍👧"),  # zero-width-joiner family stays whole
        ("\r\nab", "ba\r\n"),  # CRLF is one cluster
    ],
)
def test_reverse_keeps_graphemes_whole(text: str, expected: str) -> None:
    assert reverse_graphemes(text) == expected


def test_reversing_twice_gives_the_text_back() -> None:
    text = "Crème brûlée 🇯🇵 👩🏾‍💻!"
    assert reverse_graphemes(reverse_graphemes(text)) == text
