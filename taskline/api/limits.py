"""A cap on request bodies, enforced before any handler reads them.

A declared body (Content-Length) over the limit is refused unread. A streamed one (chunked)
is read here, up to the limit, before the app runs, and handed to it whole: refused as soon
as it passes the limit, whether or not the route would read it. Counting while the app reads
instead would fail inside FastAPI, which answers any error met while reading a body, except
an HTTPException, with a 400; and a route that reads no body would never refuse it.
"""

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class BodyLimit:
    """ASGI middleware: 413 for a body over `max_bytes`, declared or streamed."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        declared = headers.get(b"content-length")
        if declared is not None:
            # The server reads no more than the declared length.
            if not declared.isdigit() or int(declared) > self.max_bytes:
                await self._refuse(scope, receive, send)
            else:
                await self.app(scope, receive, send)
        elif b"transfer-encoding" in headers:
            await self._streamed(scope, receive, send)
        else:
            await self.app(scope, receive, send)  # no body

    async def _streamed(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Read a streamed body up to the limit, then run the app on it."""
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client left before the end of its body: no one to answer
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(scope, receive, send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        await self.app(scope, replay(b"".join(chunks), receive), send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        detail = f"request body over {self.max_bytes} bytes"
        await JSONResponse({"detail": detail}, 413)(scope, receive, send)


def replay(body: bytes, receive: Receive) -> Receive:
    """A receive that gives a body already read, then whatever comes next (a disconnect):
    for an app after a middleware that had to read the body first."""
    pending = True

    async def replayed() -> Message:
        nonlocal pending
        if pending:
            pending = False
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed
