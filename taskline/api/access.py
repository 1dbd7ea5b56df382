"""Every request's id, and its one access line: method, route template, status, duration,
request id, task and user; the same template, status and duration are counted for
`/metrics` (api.metrics), here rather than in a middleware of their own.

The request id is the client's `X-Request-ID` when it is sane (core.log_tags.sane: at most
128 of `A-Z a-z 0-9 . _ : + / = -`), else a new one; it is echoed in the response's
`X-Request-ID` (and a WebSocket's handshake) and tags every line logged for the request. The
route is the template (`/tasks/{task_id}`), never the raw path: ids would make every line a
new value, and a query string may hold a token. A stream (SSE, a long poll, a WebSocket) is
logged once, when it ends, with its whole duration; a WebSocket's status is 101 once accepted,
403 if refused at the handshake.

Lines are written together, a tenth of a second after the first of them or once 256 wait,
and at shutdown: one write for hundreds of requests under load (a write per line, or per
turn of the event loop, cost more than the line itself). A process killed outright loses at
most that tenth of a second of access lines. TASKLINE_ACCESS_LOG=false: none at all.
"""

import asyncio
import os
import secrets
import time
from itertools import count

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from taskline.api.metrics import ProcessMetrics
from taskline.core import log_tags
from taskline.core.log_format import AccessLines, LineHandler
from taskline.core.log_tags import CURRENT, Tags

HEADER = b"x-request-id"
FLUSH_SECONDS = 0.1
MAX_PENDING = 256
# Where a middleware that answers before routing (api.hotpaths) names the route it served.
ROUTE = "taskline.route"


class AccessLog:
    """Access lines of this process, written in batches."""

    def __init__(self, handler: LineHandler) -> None:
        self.handler = handler
        self.line = AccessLines(handler, os.getpid())
        self._pending: list[str] = []
        self._timer: asyncio.TimerHandle | None = None

    def add(self, method: str, route: str | None, status: int, ms: float, tags: Tags) -> None:
        self._pending.append(self.line(time.time(), method, route, status, ms, tags))
        if len(self._pending) >= MAX_PENDING:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._pending:
            text = "".join(self._pending)
            self._pending.clear()
            self.handler.write(text)


class Access:
    """ASGI middleware (the outermost of the app's): request ids, tags and access lines."""

    def __init__(
        self, app: ASGIApp, log: AccessLog | None, metrics: ProcessMetrics | None = None
    ) -> None:
        self.app = app
        self.log = log
        self.metrics = metrics  # counts each request as its line tells it (api.metrics)
        # New request ids: 32 hex digits, a random half per process and a counter (unique
        # without asking the system for randomness on every request).
        self._prefix = secrets.token_hex(8)
        self._count = count(1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            try:
                await self.app(scope, receive, send)
            finally:
                if self.log:
                    self.log.flush()
                if self.metrics:
                    self.metrics.flush()
            return
        request_id = _incoming(scope) or f"{self._prefix}{next(self._count):016x}"
        header = (HEADER, request_id.encode())
        tags = Tags(request_id)
        status = 0

        async def answer(message: Message) -> None:
            nonlocal status
            if not status:  # the first message: the answer's start (the rest pass as they are)
                started = message["type"]
                if started == "websocket.close":
                    status = 403  # closed before it was accepted: the server answers 403
                else:  # http.response.start, websocket.accept, websocket.http.response.start
                    status = message.get("status", 101)
                    headers = message.get("headers")
                    if type(headers) is list:
                        headers.append(header)  # as Starlette's own middlewares add theirs
                    else:
                        message = {**message, "headers": [*(headers or ()), header]}
            await send(message)

        token = CURRENT.set(tags)
        began = time.perf_counter()
        try:
            await self.app(scope, receive, answer)
        except BaseException:
            status = status or 500
            raise
        finally:
            CURRENT.reset(token)
            if self.log or self.metrics:
                seconds = time.perf_counter() - began
                method = scope["method"] if kind == "http" else "WS"
                route = _route(scope)
                if self.log:
                    self.log.add(method, route, status, seconds * 1000, tags)
                if self.metrics:
                    self.metrics.answered(method, route, status, seconds)


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
