"""Previews keep a task's shape and bound its bytes (api.preview)."""

import json

from taskline.api.preview import budget, preview_event
from taskline.core.previews import CUT_MARK, cut, cut_to_end
from taskline.core.settings import Settings


def size(value: object) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())


def test_a_cut_keeps_the_shape_within_about_its_bytes() -> None:
    params = {"text": "\N{GRINNING FACE}" * 100_000, "delay_seconds": 0}
    short, was_cut = cut(params, 500)
    assert was_cut and set(short) == set(params) and short["delay_seconds"] == 0
    assert params["text"].startswith(short["text"]) and short["text"]
    assert size(short) <= 500
    pages, was_cut = cut({"first_page": ["A1B2C3" * 3] * 1000, "count": 1000}, 300)
    assert was_cut and 0 < len(pages["first_page"]) < 1000 and size(pages) <= 300


def test_what_fits_is_not_cut() -> None:
    value = {"percent": 50.0, "current": 1, "total": 2, "intermediate": "3.14"}
    assert cut(value, 200) == (value, False)
    assert cut("é" * 10, 22) == ("é" * 10, False)


def test_a_page_shares_its_budget_and_a_cut_event_links_the_whole() -> None:
    settings = Settings(preview_bytes=4096, page_preview_bytes=400_000)
    assert budget(settings, 1) == 4096
    assert budget(settings, 500) == 160  # five parts: params, progress, result, error, errors
    event = {"id": "t1", "state": "PROGRESS", "progress": {"intermediate": "3" * 10_000}}
    shown = preview_event(event, 1000)
    assert shown["truncated"] is True and shown["links"]["self"] == "/tasks/t1"
    assert size(shown["progress"]) <= 1000
    assert "truncated" not in preview_event({"id": "t2", "state": "STARTED"}, 1000)


def test_a_text_cut_to_its_end_keeps_its_last_bytes_whole_characters_and_a_mark() -> None:
    text = "Traceback (most recent call last):\n" + "\N{GRINNING FACE}" * 100 + "\nError: bad\n"
    assert cut_to_end(text, len(text.encode())) == text
    for limit in (0, 3, len(CUT_MARK.encode()), 40, 41, 42, 43, 200):
        short = cut_to_end(text, limit)
        assert len(short.encode()) <= limit and text.endswith(short.removeprefix(CUT_MARK))
        assert short.startswith(CUT_MARK) or limit <= len(CUT_MARK.encode())
    assert cut_to_end(text, 200).endswith("\nError: bad\n")
