"""Command-line values: `k=v` task params and ISO-8601 moments, checked before anything is sent."""

import json
from datetime import datetime
from typing import Any

from taskline.cli.exits import CliError, ExitCode


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """`k=v` pairs as task params; a value is JSON when it parses (`7` → 7, `[1]` → [1],
    `true` → True), else the text itself (`hello` → "hello"; quote it for a JSON string:
    `text='"7"'`)."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise CliError(f"--param takes KEY=VALUE, not {pair!r}", ExitCode.USAGE)
        if key in params:
            raise CliError(f"--param {key} is given twice", ExitCode.USAGE)
        params[key] = json_or_text(text)
    return params


def json_or_text(text: str) -> Any:
    """The JSON value `text` spells, or `text` itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_moment(text: str, option: str) -> str:
    """An ISO-8601 moment for the API, which wants an offset: a time without one is local."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise CliError(
            f"{option} takes an ISO-8601 time such as 2026-11-23T19:00:00Z, not {text!r}",
            ExitCode.USAGE,
        ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()  # the local time zone
    return moment.isoformat()
