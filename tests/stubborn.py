"""A task for tests only: it never looks for cancel requests (loaded with --include)."""

import time

from celery import shared_task

from taskline import Params
from taskline.worker.base import TasklineTask


@shared_task(bind=True, name="test_stubborn")
def stubborn(task: TasklineTask, params: Params) -> str:
    """Sleep through any cancel request; only killing the pool child stops it."""
    time.sleep(params.delay_seconds)
    return "finished anyway"
