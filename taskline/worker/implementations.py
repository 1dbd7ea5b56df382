"""The worker's half of the task packages: each declaration bound to its implementation.

Imported by a booting worker only (when Celery imports its modules), never by the API. Every
declaration must name a function marked `@implements` for it, and every function so marked
in those modules a loaded declaration; otherwise the worker exits at start saying which
module to fix.
"""

import importlib
import logging
import sys
from collections.abc import Callable
from typing import Any

from taskline.core.registry import Registry, TaskPackageError, tasks_of
from taskline.declaring import IMPLEMENTS, Params, TaskDeclaration, implemented
from taskline.worker.base import TasklineTask
from taskline.worker.celery_app import TasklineCelery
from taskline.worker.context import RunContext
from taskline.worker.hooks.run import Run

logger = logging.getLogger(__name__)


class DeclaredTask(TasklineTask):
    """The Celery task of a declared type: its implementation takes a context and the params."""

    def body(self, run: Run, params: Params) -> Any:
        return self.run(RunContext(run), params)


def implementation_of(declaration: TaskDeclaration) -> Callable[..., Any]:
    """Import the function a declaration names, checking that it is marked for it."""
    module_name, _, function_name = declaration.implementation.partition(":")
    where = f"task {declaration.name!r} (declared in {declaration.module})"
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:
        raise TaskPackageError(
            f"{where}: its implementation module {module_name!r} failed to import "
            f"({type(exc).__name__}: {exc}); fix it or the declaration's implementation"
        ) from exc
    function: Callable[..., Any] | None = getattr(module, function_name, None)
    if function is None or not callable(function):
        raise TaskPackageError(
            f"{where} is declared but not implemented: {module_name} has no function "
            f"{function_name!r}; write it, marked @taskline.implements({declaration.name})"
        )
    if getattr(function, IMPLEMENTS, None) != declaration.name:
        raise TaskPackageError(
            f"{where}: {declaration.implementation} is not marked as its implementation; "
            f"decorate it with @taskline.implements(...) of this declaration"
        )
    return function


def bind(celery: TasklineCelery, tasks: Registry) -> None:
    """Register one Celery task per declaration, all or none."""
    functions = {d.name: implementation_of(d) for d in tasks.values()}
    modules = {d.implementation.partition(":")[0] for d in tasks.values()}
    for name, where in implemented():
        if where.partition(":")[0] in modules and name not in tasks:
            raise TaskPackageError(
                f"{where} implements {name!r}, which no package of TASKLINE_TASK_PACKAGES "
                "declares: add the package that declares it, or remove the implementation"
            )
    for name, function in functions.items():
        if name in celery.tasks:
            continue  # bound already (a worker imports its modules more than once)
        declaration = tasks[name]

        def run(context: RunContext, params: Any, _f: Callable[..., Any] = function) -> Any:
            return _f(context, params)

        run.__name__ = run.__qualname__ = name
        run.__doc__ = declaration.description
        celery.task(base=DeclaredTask, name=name, shared=False)(run)


def bind_on_boot(celery: TasklineCelery) -> None:
    """Bind the tasks of a booting worker's app, or exit saying what to fix."""
    try:
        bind(celery, tasks_of(celery.settings))
    except TaskPackageError as error:
        logger.critical("%s", error)
        print(f"taskline worker: {error}", file=sys.stderr)
        raise SystemExit(2) from error
