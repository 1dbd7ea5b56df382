"""Raises on import outside a Celery worker: the API must never import it."""

import sys

from taskline import Context, Params, implements
from tests.packages.guarded import GUARDED

if "celery.worker.worker" not in sys.modules:
    raise ImportError("tests.packages.guarded.work was imported outside a worker")


@implements(GUARDED)
def guarded(context: Context, params: Params) -> str:
    return "ran in the worker"
