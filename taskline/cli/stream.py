"""Server-Sent Events that survive a dropped connection: resumed with `Last-Event-ID`."""

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from httpx_sse import SSEError, connect_sse

from taskline.cli.answers import Shape, event_data, stream_error, unexpected
from taskline.cli.connection import check, unreachable

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
    client: httpx.Client,
    path: str,
    shapes: Mapping[str, Shape] | None = None,
    other: Shape = object,
) -> Iterator[Event]:
    """The events of an SSE route, for as long as the caller reads them; each event's data has
    its kind's shape in `shapes` (else `other`), or the stream is not the API's (exit 3).

    When the stream ends or the connection drops, it reconnects from the last id seen (the API
    then sends every later event, once). It gives up after RECONNECTS attempts in a row that
    brought no event; an answer that is not an event stream ends it at once.
    """
    last_id: str | None = None
    failures = 0
    while True:
        headers = {"Last-Event-ID": last_id} if last_id else {}
        error: Exception | None = None
        try:
            with connect_sse(client, "GET", path, headers=headers, timeout=TIMEOUT) as source:
                check(source.response)
                expect_stream(source.response)
                for sse in source.iter_sse():
                    if not sse.data:
                        continue  # a keep-alive (the decoder repeats the last id with it)
                    shape = (shapes or {}).get(sse.event, other)
                    data = event_data(sse.data, shape, sse.event, path)
                    failures = 0  # a real event: the stream works, whatever came before
                    # An event without an id of its own (`line`) carries the previous one.
                    own_id = sse.id if sse.id and sse.id != last_id else None
                    last_id = sse.id or last_id
                    yield Event(sse.event, own_id, data)
        except SSEError as exc:  # a TransportError too: it must be caught first
            raise stream_error(path, str(exc)) from exc
        except httpx.RequestError as exc:
            error = exc
        failures += 1
        if failures > RECONNECTS:
            if error is not None:
                raise unreachable(client, error) from error
            raise stream_error(path, f"it ended {failures} times in a row without an event")
        time.sleep(min(0.2 + 0.5 * failures, 2.0))  # never reconnect in a busy loop


def expect_stream(response: httpx.Response) -> None:
    """A 2xx that is not `text/event-stream` (an HTML page, JSON) will never carry events:
    reconnecting to it would loop forever, so it ends the command."""
    kind = response.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != "text/event-stream":
        raise unexpected(response, f"not an event stream ({kind or 'no content type'})")
