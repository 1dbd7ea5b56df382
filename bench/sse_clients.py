"""Many Server-Sent Events clients watching one task, in one separate light process.

Either the task's own stream (`/tasks/{id}/events`) or, with `--line-task ID`, the whole
line's (`/events`), where each client keeps that task's events and stops at its end.

Plain asyncio streams rather than an HTTP client library, so that 200 clients cost this
process little and the API's CPU is what the figure measures. Each client sends
`Connection: close` and reads until the server ends the stream; it keeps the id of every
`progress` event. Prints `READY` once every client has its first (current state) event, then
one JSON line: per-client progress counts and whether all clients saw the same event ids.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit

# The longest line read: a snapshot of the line is one `data:` line of up to a MiB (asyncio's
# default, 64 KiB, ended every client at the first large snapshot).
LINE_LIMIT = 4 * 2**20


class Client:
    """One SSE connection and what it saw."""

    def __init__(self) -> None:
        self.first = asyncio.Event()
        self.progress_ids: list[str] = []
        self.states: list[str] = []
        self.status = 0
        self.error = ""

    async def watch(self, host: str, port: int, path: str, token: str, line_task: str) -> None:
        """Read the stream line by line; chunk-size lines of the chunked body are ignored."""
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=LINE_LIMIT)
            writer.write(
                (
                    f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n"
                    "Connection: close\r\n\r\n"
                ).encode()
            )
            await writer.drain()
            self.status = int((await reader.readline()).split()[1])
            while (await reader.readline()) not in (b"\r\n", b""):
                pass  # response headers
            fields: dict[str, str] = {}
            async for raw in reader:
                line = raw.rstrip(b"\r\n").decode()
                name, sep, value = line.partition(": ")
                if sep and name in ("id", "event", "data"):
                    fields[name] = value
                elif not line and "data" in fields:  # a blank line ends an event
                    ended = self._take(fields, line_task)
                    self.first.set()
                    fields = {}
                    if ended:
                        break
            writer.close()
        except (OSError, ValueError, IndexError, KeyError) as exc:
            self.error = repr(exc)
        finally:
            self.first.set()

    def _take(self, fields: dict[str, str], line_task: str) -> bool:
        """Keep one event; True once the watched task has ended (on the line's stream)."""
        if not line_task:
            if fields.get("event") == "progress":
                self.progress_ids.append(fields.get("id", ""))
            elif fields.get("event") == "state":
                self.states.append(json.loads(fields["data"]).get("state", ""))
            return False
        if fields.get("event") != "task":
            return False
        data = json.loads(fields["data"])
        if data["id"] != line_task:
            return False
        if data["kind"] == "progress":
            self.progress_ids.append(fields.get("id", ""))
        self.states.append(data["state"])
        return data["kind"] == "ended"


async def run(
    url: str, token: str, clients: int, limit: float, line_task: str = ""
) -> dict[str, object]:
    parts = urlsplit(url)
    host, port, path = parts.hostname or "127.0.0.1", parts.port or 80, parts.path
    watchers = [Client() for _ in range(clients)]
    tasks = [asyncio.create_task(c.watch(host, port, path, token, line_task)) for c in watchers]
    start = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(c.first.wait() for c in watchers)), limit)
    print("READY", round(time.monotonic() - start, 3), flush=True)
    done, pending = await asyncio.wait(tasks, timeout=limit)
    for task in pending:
        task.cancel()
    counts = [len(c.progress_ids) for c in watchers]
    reference = watchers[0].progress_ids
    return {
        "clients": clients,
        "finished": len(done),
        "errors": [c.error for c in watchers if c.error][:5],
        "statuses": sorted({c.status for c in watchers}),
        "progress_min": min(counts),
        "progress_max": max(counts),
        "progress_ids": reference,
        "identical": all(c.progress_ids == reference for c in watchers),
        "final_states": sorted({c.states[-1] if c.states else "" for c in watchers}),
        "seconds": round(time.monotonic() - start, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url", help="http://host:port/tasks/{id}/events or …/events")
    parser.add_argument("--line-task", default="", help="on /events: the task to follow")
    parser.add_argument("--token", required=True)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args()
    result = asyncio.run(run(args.url, args.token, args.clients, args.timeout, args.line_task))
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
