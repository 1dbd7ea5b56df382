"""Taskline: an HTTP front for Celery work that runs one task at a time, in order.

The public API for task authors — everything a task package imports, and nothing else:

    from taskline import Context, Params, declare, implements

A package declares its task types (`declare`, in a module the API may import: no heavy
dependencies) and implements each in a module only the worker imports (`implements`).
"""

from taskline.context import Cancelled, Context, RunStopped, Superseded
from taskline.declaring import (
    MAX_DELAY_SECONDS,
    ExclusiveRange,
    Params,
    RetryPolicy,
    TaskDeclaration,
    declare,
    implements,
)

__all__ = [
    "MAX_DELAY_SECONDS",
    "Cancelled",
    "Context",
    "ExclusiveRange",
    "Params",
    "RetryPolicy",
    "RunStopped",
    "Superseded",
    "TaskDeclaration",
    "declare",
    "implements",
]
