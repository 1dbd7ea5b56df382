"""The Celery tasks: thin wrappers that pace, report progress and call the pure functions.

Registered by name from the catalogue; the worker imports this module when it boots.
"""

import itertools
import time
from typing import Any

from celery import shared_task

from taskline.builtins.leibniz import iter_pi
from taskline.builtins.text import reverse_graphemes
from taskline.core.catalog import LeibnizParams, ReverseParams, SerialParams, TaskName
from taskline.core.serials import iter_serials
from taskline.worker.base import TasklineTask

# Series terms per snapshot when a delay pads the run: fine steps to spread over the delay.
PADDED_CHUNK_TERMS = 1 << 16


@shared_task(bind=True, base=TasklineTask, name=TaskName.LEIBNIZ_PI.value)
def leibniz_pi(task: TasklineTask, params: LeibnizParams) -> dict[str, Any]:
    """Sum the series, reporting the current estimate after every chunk."""
    started = time.perf_counter()
    chunk = PADDED_CHUNK_TERMS if params.delay_seconds else None
    for step in iter_pi(params.digits, params.method, chunk_terms=chunk):
        fraction = step.terms / step.total_terms if step.total_terms else 1.0
        task.progress(
            step.terms, step.total_terms, step.estimate, certain_digits=step.certain_digits
        )
        task.pace(params, fraction)
    task.pace(params, 1.0)
    return {
        "pi": step.value,
        "digits": params.digits,
        "method": params.method,
        "terms": step.terms,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


@shared_task(bind=True, base=TasklineTask, name=TaskName.REVERSE.value)
def reverse(task: TasklineTask, params: ReverseParams) -> str:
    """Reverse the text, spreading any requested delay over ten progress steps."""
    steps = 10
    for step in range(1, steps + 1):
        task.progress(step, steps)
        task.pace(params, step / steps)
    return reverse_graphemes(params.text)


# Serials per page of a generation's result.
SERIAL_PAGE = 1000


@shared_task(bind=True, base=TasklineTask, name=TaskName.GENERATE_SERIALS.value)
def generate_serials(task: TasklineTask, params: SerialParams) -> dict[str, Any]:
    """Generate the serials page by page, so memory and the result stay small.

    Each page of SERIAL_PAGE serials is appended to the task's pages in Redis as soon as it
    is made (GET /tasks/{id}/pages/{n}); the result carries the first page and a summary.
    """
    secret = task.settings.serial_secret.get_secret_value().encode()
    serials = iter_serials(secret, params.code_model, params.number, params.count)
    # Pages of an earlier attempt are gone: each claim starts the pages afresh.
    first_page: list[str] = []
    made = pages = 0
    while made < params.count:
        page = list(itertools.islice(serials, min(SERIAL_PAGE, params.count - made)))
        task.append_page(page)
        first_page = first_page or page
        made += len(page)
        pages += 1
        task.progress(made, params.count, page[-1])
        task.pace(params, made / params.count)
    return {
        "count": params.count,
        "first": first_page[0],
        "last": page[-1],
        "pages": pages,
        "page_size": SERIAL_PAGE,
        "serials": first_page,
    }
