"""Previews: a large JSON value cut short, keeping its shape.

A task may hold megabytes (100,000 emoji of params, as many in its result). Where many tasks
or many events go out together (listings, the /events snapshot, event streams), their large
parts are cut to a few KB, and marked so (api.preview); what is cut is at the task's own URL.
"""

import json
from typing import Any


def cut(value: Any, limit: int) -> tuple[Any, bool]:
    """The value in about `limit` bytes of JSON, and whether it was cut.

    The shape stays: a long text is shortened, a list stops early, an object keeps every key
    (a model's required fields stay) with its values cut from what is left; numbers, booleans
    and null stay whole.
    """
    found, _, was_cut = _cut(value, limit)
    return found, was_cut


def _cut(value: Any, limit: int) -> tuple[Any, int, bool]:
    """The value cut to `limit` bytes (or about), the bytes it takes, whether it was cut."""
    if isinstance(value, str):
        if len(value) * 4 + 2 <= limit:  # fits whatever the characters
            return value, len(value) * 4 + 2, False
        raw = value.encode()
        if len(raw) + 2 <= limit:
            return value, len(raw) + 2, False
        short = raw[: max(limit - 2, 0)].decode(errors="ignore")
        return short, len(short.encode()) + 2, True
    if isinstance(value, list):
        items: list[Any] = []
        used, was_cut = 2, False
        for item in value:
            if used >= limit:
                return items, used, True
            found, size, shortened = _cut(item, limit - used)
            items.append(found)
            used, was_cut = used + size + 1, was_cut or shortened
        return items, used, was_cut
    if isinstance(value, dict):
        # keys, numbers, booleans and null first: they stay whole; the rest share what is left
        used = 2 + sum(len(str(key).encode()) + 4 for key in value)
        used += sum(_cut(v, 0)[1] for v in value.values() if not isinstance(v, str | list | dict))
        obj: dict[Any, Any] = {}
        was_cut = False
        for key, item in value.items():
            if isinstance(item, str | list | dict):
                found, size, shortened = _cut(item, max(limit - used, 0))
                item, used, was_cut = found, used + size, was_cut or shortened
            obj[key] = item
        return obj, used, was_cut
    return value, len(json.dumps(value)), False


# What begins a text whose start was cut (cut_to_end).
CUT_MARK = "[… cut]\n"


def cut_to_end(text: str, limit: int) -> str:
    """The end of `text` in at most `limit` bytes of UTF-8, marked when its start was cut:
    the end of a traceback names the line that raised and the exception."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    room = limit - len(CUT_MARK.encode())
    if room <= 0:
        return raw[len(raw) - limit :].decode("utf-8", "ignore")
    return CUT_MARK + raw[len(raw) - room :].decode("utf-8", "ignore")
