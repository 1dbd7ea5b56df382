"""Searchable params: the values of a task's params its search indexes hold.

A task type names the params a listing may search by (`declare(searchable=...)`); each
task's value of them (as text: a str itself, an int in digits, a bool `true`/`false`) puts
it in an index family of its own, by type, param and value (core.records.Keys.families),
written at creation and rewritten when an edit changes the params. A value longer than the
bound is not indexed: a search by it could not be answered from a bounded key.
"""

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any


def value_text(value: Any) -> str | None:
    """A param's value as a search names it, or None for a value no search names."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | str):
        return str(value)
    return None


def part(name: str, param: str, text: str) -> str:
    """The key part of one (type, param, value): the value by digest, so any text fits."""
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"{name}:{param}:{digest}"


def searched(
    name: str, searchable: Iterable[str], params: Mapping[str, Any], most_bytes: int
) -> list[str]:
    """The key parts of the values of a task's searchable params that its indexes hold."""
    found = []
    for param in searchable:
        text = value_text(params.get(param))
        if text is not None and len(text.encode()) <= most_bytes:
            found.append(part(name, param, text))
    return found
