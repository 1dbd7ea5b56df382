"""Flower as Taskline runs it (`python -m taskline.worker.flower`): it shows, and changes
nothing unless TASKLINE_FLOWER_CONTROL=true.

Flower's control endpoints act outside Taskline's records: they send tasks by name (no record,
no turn in the line), revoke, abort and re-time them, and shut down, restart, grow, shrink,
autoscale or re-route workers. By default their routes are taken out of Flower's URL table
before it starts, so such a request is a 404 whatever its credentials, and Flower's read-only
mode hides the dashboard's buttons. Flower leaves /metrics and /healthcheck open to anyone:
here they need its password too. The production guard runs first, as in every process.
"""

import os
from collections.abc import Sequence
from typing import Any

from celery.bin.celery import celery
from flower import urls
from flower.views import monitor
from flower.views.error import NotFoundErrorHandler
from flower.views.tasks import TasksDataTable
from tornado.routing import URLSpec
from tornado.web import RequestHandler, authenticated

from taskline.core.guard import exit_if_unsafe
from taskline.core.log_format import configure as configure_logging
from taskline.core.settings import Settings, get_settings
from taskline.worker.celery_app import app

WRITE_METHODS = ("post", "put", "patch", "delete")
# Handlers that answer POST but only read: the tasks table's query and the catch-all 404.
READING_POSTS = (TasksDataTable, NotFoundErrorHandler)


def handler_class(route: Any) -> type:
    """The handler of a Flower route, given as a URLSpec or a (pattern, handler, …) tuple."""
    handler: type = route.handler_class if isinstance(route, URLSpec) else route[1]
    return handler


def controls(handler: type) -> bool:
    """Whether a handler can change something: it answers a write method and is no reader.

    Judged by the methods, not by a list of names, so that a control endpoint a later Flower
    adds is left out too.
    """
    writes = any(
        getattr(handler, method, None) is not getattr(RequestHandler, method)
        for method in WRITE_METHODS
    )
    return writes and not issubclass(handler, READING_POSTS)


def read_only_routes(routes: Sequence[Any]) -> list[Any]:
    """The routes without those whose handler controls tasks or workers."""
    return [route for route in routes if not controls(handler_class(route))]


def signed_in(handler: type[RequestHandler]) -> type[RequestHandler]:
    """A Flower handler whose GET needs Flower's password (a subclass of the same name).

    Built by a function rather than a class statement: Flower ships no types, so a class
    statement would subclass an unknown type."""
    return type(handler.__name__, (handler,), {"get": authenticated(handler.get)})


# Flower's handlers that answer without credentials, and what replaces each.
SIGNED_IN = {
    monitor.Metrics: signed_in(monitor.Metrics),
    monitor.Healthcheck: signed_in(monitor.Healthcheck),
}


def signed_in_routes(routes: Sequence[Any]) -> list[Any]:
    """The routes, each open one replaced by its signed-in version."""
    return [
        (route[0], SIGNED_IN[route[1]], *route[2:])
        if not isinstance(route, URLSpec) and route[1] in SIGNED_IN
        else route
        for route in routes
    ]


def flower_arguments(settings: Settings) -> list[str]:
    """The `celery` command line that starts Flower on the configured address."""
    arguments = [
        "-A",
        "taskline.worker.celery_app",
        "flower",
        f"--address={settings.flower_host}",
        f"--port={settings.flower_port}",
    ]
    if not settings.flower_control:
        arguments.append("--read_only=true")
    return arguments


def main() -> None:
    settings = get_settings()
    # Before Flower starts: Tornado then adds no handler of its own (the root has ours).
    configure_logging("flower", settings.log_format)
    exit_if_unsafe(settings, "Flower")
    password = settings.flower_password.get_secret_value()
    if "," in password:
        raise SystemExit("TASKLINE_FLOWER_PASSWORD holds a comma, which Flower cannot read")
    urls.handlers[:] = signed_in_routes(urls.handlers)
    if not settings.flower_control:
        urls.handlers[:] = read_only_routes(urls.handlers)
    # Flower's result route builds its AsyncResult on Celery's default app, which has no
    # backend (503): make it this app (a TasklineCelery is never set as current).
    app.set_default()
    # Through the environment, not the command line, which every local user can read.
    os.environ["FLOWER_BASIC_AUTH"] = f"{settings.flower_user}:{password}"
    celery.main(args=flower_arguments(settings), prog_name="celery")


if __name__ == "__main__":
    main()
