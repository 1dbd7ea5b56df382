"""Redis replies as this project's clients give them: text, never bytes.

Every client here is made with decode_responses=True, so a text reply is a str; redis-py's
annotations cannot tell clients apart and say `bytes | str` for all. These functions narrow
a reply to what it is, checking it: a client that does not decode fails here, loudly.
"""

from typing import Any

# A stream entry: its id and its fields.
Entry = tuple[str, dict[str, str]]


def text(reply: object) -> str:
    if not isinstance(reply, str):
        raise TypeError(f"a decoded Redis reply is text, not {type(reply).__name__}")
    return reply


def text_or_none(reply: object) -> str | None:
    return None if reply is None else text(reply)


def texts(reply: object) -> list[str]:
    """Members of a set or list (ZRANGE, LRANGE, ...)."""
    return [text(member) for member in _list(reply)]


def scored(reply: object) -> list[tuple[str, float]]:
    """Members with their scores (WITHSCORES)."""
    return [(text(member), float(score)) for member, score in _list(reply)]


def entries(reply: object) -> list[Entry]:
    """Stream entries (XRANGE, XREVRANGE, one stream of XREAD)."""
    return [(text(entry_id), _fields(fields)) for entry_id, fields in _list(reply)]


def read_entries(reply: object) -> list[Entry]:
    """The entries of an XREAD reply, of every stream it read."""
    return [entry for _, stream in _list(reply) for entry in entries(stream)]


def _list(reply: object) -> list[Any]:
    if reply is None:
        return []
    if not isinstance(reply, list):
        raise TypeError(f"expected a list reply, not {type(reply).__name__}")
    return reply


def _fields(reply: object) -> dict[str, str]:
    if not isinstance(reply, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in reply.items()
    ):
        raise TypeError(f"expected a hash of text, not {reply!r:.100}")
    return reply
