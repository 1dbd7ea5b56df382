"""The two hot routes, answered before FastAPI's routing and dependency solving.

Clients poll `GET /tasks/{id}` and submit with `POST /tasks` far more than anything else, and
the framework's per-request machinery cost more than the work itself (a quarter of a
submission, two thirds of a read). This middleware answers the plain form of these two
requests with the same functions the routes use, so the answer is the same, errors included.
Anything else passes through untouched: other routes, a query string (`?wait`), a body that is
not plain JSON or does not validate (the route then gives FastAPI's own 422). The routes in
api.routes.tasks stay, for those requests and for the OpenAPI document.
"""

from pydantic import ValidationError
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from taskline.api.access import ROUTE
from taskline.api.control import visible
from taskline.api.deps import credentials
from taskline.api.errors import TasklineError, error_response
from taskline.api.limits import replay
from taskline.api.routes.tasks import IDEMPOTENCY_KEY_MAX, accept, task_response
from taskline.api.schemas import TaskCreate

TASKS = "/tasks"
TASK = "/tasks/{task_id}"


class HotPaths:
    """ASGI middleware: plain `GET /tasks/{id}` and `POST /tasks`, answered directly."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["query_string"]:
            await self.app(scope, receive, send)
        elif scope["method"] == "GET" and (task_id := _task_id(scope["path"])):
            await self._read(scope, receive, send, task_id)
        elif scope["method"] == "POST" and scope["path"] == TASKS:
            await self._create(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _read(self, scope: Scope, receive: Receive, send: Send, task_id: str) -> None:
        scope[ROUTE] = TASK
        request = Request(scope, receive)
        try:
            user = await credentials(request)
            snapshot = await visible(request.app.state.store, task_id, user)
            response = task_response(snapshot, traceback=user.reads_tracebacks)
        except TasklineError as exc:
            response = error_response(exc)
        await response(scope, receive, send)

    async def _create(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            body = await request.body()
        except ClientDisconnect:
            return
        key = request.headers.get("idempotency-key")
        task = _plain_task(request, body)
        if task is None or (key is not None and len(key) > IDEMPOTENCY_KEY_MAX):
            await self.app(scope, replay(body, receive), send)
            return
        response: Response
        scope[ROUTE] = TASKS
        try:
            user = await credentials(request)
            response = await accept(task, user, request.app.state.submitter, key)
        except TasklineError as exc:
            response = error_response(exc)
        await response(scope, receive, send)


def _task_id(path: str) -> str | None:
    """The id of a `/tasks/{id}` path, else None."""
    if not path.startswith(TASKS + "/"):
        return None
    task_id = path[len(TASKS) + 1 :]
    return task_id if task_id and "/" not in task_id else None


def _plain_task(request: Request, body: bytes) -> TaskCreate | None:
    """The task of a JSON body that validates, else None (the route answers that one)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return None
    try:
        return TaskCreate.model_validate_json(body)
    except ValidationError:
        return None
