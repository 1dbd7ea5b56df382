"""Every request's id, and its one access line: method, route template, status, duration,
request id, task and user.

The request id is the client's `X-Request-ID` when it is sane (core.log_tags.sane: at most
128 of `A-Z a-z 0-9 . _ : + / = -`), else a new one; it is echoed in the response's
`X-Request-ID` (and a WebSocket's handshake) and tags every line logged for the request. The
route is the template (`/tasks/{task_id}`), never the raw path: ids would make every line a
new value, and a query string may hold a token. A stream (SSE, a long poll, a WebSocket) is
logged once, when it ends, with its whole duration; a WebSocket's status is 101 once accepted,
403 if refused at the handshake.

The lines of one turn of the event loop are written together, at the start of the next:
one write for all the requests answered meanwhile (TASKLINE_ACCESS_LOG=false: none at all).
"""

import asyncio
import os
import secrets
import time
from itertools import count

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskline.core import log_tags
from taskline.core.log_format import LineHandler, access_line
from taskline.core.log_tags import Tags

HEADER = b"x-request-id"
# Where a middleware that answers before routing (api.hotpaths) names the route it served.
ROUTE = "taskline.route"


class RequestIds:
    """New request ids: 32 hex digits, a random half per process and a counter (unique
    without asking the system for randomness on every request)."""

    def __init__(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._count = count(1)

    def __next__(self) -> str:
        return f"{self._prefix}{next(self._count):016x}"


class AccessLog:
    """Access lines of this process, gathered over one turn of the event loop."""

    def __init__(self, handler: LineHandler) -> None:
        self.handler = handler
        self.pid = os.getpid()
        self._pending: list[str] = []

    def add(self, method: str, route: str | None, status: int, ms: float, tags: Tags) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self.flush)
        line = access_line(self.handler, self.pid, time.time(), method, route, status, ms, tags)
        self._pending.append(line)

    def flush(self) -> None:
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.handler.write(text)


class Access:
    """ASGI middleware (the outermost of the app's): request ids, tags and access lines."""

    def __init__(self, app: ASGIApp, log: AccessLog | None) -> None:
        self.app = app
        self.log = log
        self.ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            try:
                await self.app(scope, receive, send)
            finally:
                if self.log:
                    self.log.flush()
            return
        request_id = _incoming(scope) or next(self.ids)
        header = (HEADER, request_id.encode())
        tags = Tags(request_id)
        status = 0

        async def answer(message: Message) -> None:
            nonlocal status
            match message["type"]:
                case "http.response.start" | "websocket.http.response.start":
                    status = message["status"]
                    message = {**message, "headers": [*message.get("headers", ()), header]}
                case "websocket.accept":
                    status = 101
                    message = {**message, "headers": [*message.get("headers", ()), header]}
                case "websocket.close" if not status:
                    status = 403  # closed before it was accepted: the server answers 403
            await send(message)

        token = log_tags.begin(tags)
        started = time.perf_counter()
        try:
            await self.app(scope, receive, answer)
        except BaseException:
            status = status or 500
            raise
        finally:
            log_tags.end(token)
            if self.log:
                ms = (time.perf_counter() - started) * 1000
                method = scope["method"] if kind == "http" else "WS"
                self.log.add(method, _route(scope), status, ms, tags)


def _incoming(scope: Scope) -> str | None:
    """The client's request id, if sane."""
    for name, value in scope["headers"]:
        if name == HEADER:
            return log_tags.sane(value.decode("latin-1"))
    return None


def _route(scope: Scope) -> str | None:
    """The template of the route that answered (a mount's as `/ui/{path}`); None if none."""
    named: str | None = scope.get(ROUTE)
    if named:
        return named
    route = scope.get("route")
    if route is not None and not isinstance(route, Mount):
        return str(getattr(route, "path_format", None) or getattr(route, "path", ""))
    if "endpoint" in scope:  # a mounted app: the mount's path is what it added to root_path
        mount = scope.get("root_path", "")[len(scope.get("app_root_path", "")) :]
        return f"{mount}/{{path}}"
    return None
