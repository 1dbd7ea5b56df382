"""The worker's log: Celery's lines and the runs', the pool child's included, in the configured
format (core.log_format) instead of Celery's own, each line of a run tagged with its task.

Imported by a booting worker only (celery_app's `celeryd_init`), before it sets up logging.
Connected to `setup_logging`, Celery configures nothing itself (no handler, no colours, no
redirection): what it did is done here. A task's `print` still becomes a WARNING line of
`celery.redirected`. In JSON, Celery's startup banner (printed, several lines) is logged as
one line instead.
"""

import logging
import sys
from contextvars import Token
from typing import Any

from celery.apps import worker as celery_worker
from celery.signals import (
    celeryd_after_setup,
    setup_logging,
    task_postrun,
    task_prerun,
)
from celery.utils.log import LoggingProxy

from taskline.core import log_tags
from taskline.core.log_format import configure
from taskline.core.log_tags import Tags
from taskline.core.settings import get_settings

log = logging.getLogger("taskline.worker")
# The tags of the runs under way in this process, by task id (a pool child runs one).
_runs: dict[str, Token[Tags | None]] = {}


def prepare(worker: Any) -> None:
    """As the worker boots (before Celery warns of anything): its lines in the configured
    format; in JSON, no printed banner (it is logged instead) and Celery's shutdown notices,
    which it writes to the terminal itself, logged too."""
    kind = get_settings().log_format
    configure("worker", kind, logging.INFO, sys.__stderr__)
    if kind == "json":
        worker.quiet = True
        setattr(celery_worker, "safe_say", _say)  # noqa: B010 (not in Celery's stubs)


def _say(message: str, *_: Any) -> None:
    log.info("%s", message.strip())


@setup_logging.connect
def _set_up(loglevel: int | str | None = None, **_: Any) -> None:
    """Connected, Celery sets up no logging of its own; the level and the redirection of the
    standard streams are done here instead."""
    logging.getLogger().setLevel(loglevel or logging.INFO)
    # The handler keeps the stream it was given (the real stderr).
    sys.stdout = sys.stderr = LoggingProxy(logging.getLogger("celery.redirected"), logging.WARNING)


@celeryd_after_setup.connect
def _banner_as_a_line(sender: str, instance: Any, **_: Any) -> None:
    if get_settings().log_format == "json":
        info = instance.startup_info(artlines=False) + (instance.extra_info() or "")
        log.info("worker %s starting:\n%s", sender, info.strip("\n"))


@task_prerun.connect
def _tag_run(task_id: str, **_: Any) -> None:
    _runs[task_id] = log_tags.begin(Tags(task_id=log_tags.sane(task_id)))


@task_postrun.connect
def _untag_run(task_id: str, **_: Any) -> None:
    token = _runs.pop(task_id, None)
    if token is not None:
        log_tags.end(token)
