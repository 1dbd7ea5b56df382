"""Server-Sent Events that survive a dropped connection: resumed with `Last-Event-ID`."""

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

from cli.connection import check, unreachable
from cli.exits import CliError, ExitCode

# Keep-alives come every 15 s: a read that waits longer means the connection is gone.
TIMEOUT = httpx.Timeout(10.0, read=45.0)
RECONNECTS = 5


@dataclass(frozen=True, slots=True)
class Event:
    """One event: its kind (`state`, `progress`, `task`, …), its id if resumable, its data."""

    kind: str
    id: str | None
    data: Any

    def as_json(self) -> dict[str, Any]:
        """The line `--json` prints for it: the SSE fields, data decoded."""
        return {"event": self.kind, "id": self.id, "data": self.data}


def events(
    client: httpx.Client, path: str, params: dict[str, str] | None = None
) -> Iterator[Event]:
    """The events of an SSE route, for as long as the caller reads them.

    When the stream ends or the connection drops, it reconnects from the last id seen (the API
    then sends every later event, once). It gives up after RECONNECTS attempts in a row that
    could not connect; a stream the API ended is simply resumed.
    """
    last_id: str | None = None
    failures = 0
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        try:
            with connect_sse(
                client, "GET", path, params=params, headers=headers, timeout=TIMEOUT
            ) as source:
                check(source.response)
                failures = 0
                for sse in source.iter_sse():
                    if not sse.data:
                        continue  # a keep-alive (the decoder repeats the last id with it)
                    # An event without an id of its own (`line`) carries the previous one.
                    own_id = sse.id if sse.id and sse.id != last_id else None
                    last_id = sse.id or last_id
                    yield Event(sse.event, own_id, json.loads(sse.data))
        except httpx.TransportError as exc:
            failures += 1
            if failures > RECONNECTS:
                raise unreachable(client, exc) from exc
        except SSEError as exc:
            raise CliError(f"{path} is not an event stream: {exc}", ExitCode.HTTP) from exc
        time.sleep(min(0.2 + 0.5 * failures, 2.0))  # never reconnect in a busy loop
