"""The built-in tasks' implementations: they pace, report progress and call pure functions.

Imported by the worker only (each declaration in `taskline.builtins` names its function).
"""

import itertools
import time
from typing import Any

from taskline import Context, implements
from taskline.builtins import (
    GENERATE_SERIALS,
    LEIBNIZ_PI,
    REVERSE,
    LeibnizParams,
    ReverseParams,
    SerialParams,
)
from taskline.builtins.leibniz import iter_pi
from taskline.builtins.serials import iter_serials
from taskline.builtins.text import reverse_graphemes

# Series terms per snapshot when a delay pads the run: fine steps to spread over the delay.
PADDED_CHUNK_TERMS = 1 << 16


@implements(LEIBNIZ_PI)
def leibniz_pi(context: Context, params: LeibnizParams) -> dict[str, Any]:
    """Sum the series, reporting the current estimate after every chunk."""
    started = time.perf_counter()
    chunk = PADDED_CHUNK_TERMS if params.delay_seconds else None
    for step in iter_pi(params.digits, params.method, chunk_terms=chunk):
        fraction = step.terms / step.total_terms if step.total_terms else 1.0
        context.progress(
            step.terms, step.total_terms, step.estimate, certain_digits=step.certain_digits
        )
        context.pace(fraction)
    context.pace(1.0)
    return {
        "pi": step.value,
        "digits": params.digits,
        "method": params.method,
        "terms": step.terms,
        "elapsed_s": round(time.perf_counter() - started, 3),
    }


@implements(REVERSE)
def reverse(context: Context, params: ReverseParams) -> str:
    """Reverse the text, spreading any requested delay over ten progress steps."""
    steps = 10
    for step in range(1, steps + 1):
        context.progress(step, steps)
        context.pace(step / steps)
    return reverse_graphemes(params.text)


# Serials per page of a generation's result.
SERIAL_PAGE = 1000


@implements(GENERATE_SERIALS)
def generate_serials(context: Context, params: SerialParams) -> dict[str, Any]:
    """Generate the serials page by page, so memory and the result stay small.

    Each page of SERIAL_PAGE serials is appended to the task's pages in Redis as soon as it
    is made (GET /tasks/{id}/pages/{n}); the result carries the first page and a summary.
    """
    secret = context.settings.serial_secret.get_secret_value().encode()
    serials = iter_serials(secret, params.code_model, params.number, params.count)
    # Pages of an earlier attempt are gone: each claim starts the pages afresh.
    first_page: list[str] = []
    made = pages = 0
    while made < params.count:
        page = list(itertools.islice(serials, min(SERIAL_PAGE, params.count - made)))
        context.page(page)
        first_page = first_page or page
        made += len(page)
        pages += 1
        context.progress(made, params.count, page[-1])
        context.pace(made / params.count)
    return {
        "count": params.count,
        "first": first_page[0],
        "last": page[-1],
        "pages": pages,
        "page_size": SERIAL_PAGE,
        "serials": first_page,
    }
