"""The hot read, `GET /tasks/{id}`, answered before FastAPI's routing and dependency solving.

Clients poll this route far more than any other, and the framework's per-request machinery
cost more than the read itself. This middleware answers exactly that request (no query string:
`?wait` goes to the full route) with the same functions the route uses, so the answer is the
same, errors included; every other request passes through. The route in api.routes.tasks
stays for `?wait` and for the OpenAPI document.
"""

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.deps import credentials
from api.errors import TasklineError, error_response
from api.routes.tasks import task_response, visible

PREFIX = "/tasks/"


class FastTaskRead:
    """ASGI middleware: `GET /tasks/{id}` without a query string, answered directly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        task_id = _plain_read(scope)
        if task_id is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            user = await credentials(request)
            snapshot = await visible(request.app.state.store, task_id, user)
            response = task_response(snapshot)
        except TasklineError as exc:
            response = error_response(exc)
        await response(scope, receive, send)


def _plain_read(scope: Scope) -> str | None:
    """The task id if this is a plain GET /tasks/{id}, else None."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope["query_string"]:
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    task_id = path[len(PREFIX) :]
    return task_id if task_id and "/" not in task_id else None
