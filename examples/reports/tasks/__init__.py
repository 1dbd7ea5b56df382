"""An example task package: the declarations, all the API ever imports of it.

Named `tasks`, as many projects name theirs: it loads beside Taskline's own packages.
"""

from pydantic import Field

from taskline import Params, RetryPolicy, declare


class WordReportParams(Params):
    """A text to report on; `fail_attempts` makes the first attempts fail (to see retries)."""

    text: str = Field(min_length=1, max_length=1_000_000, description="The text to read.")
    top: int = Field(3, ge=1, le=100, description="How many of the commonest words to list.")
    fail_attempts: int = Field(
        0, ge=0, le=5, description="Fail this many attempts on purpose, then succeed."
    )


WORD_REPORT = declare(
    "word_report",
    params=WordReportParams,
    implementation="tasks.work:word_report",
    description="Count the lines and words of a text and list its commonest words.",
    result_schema={
        "type": "object",
        "properties": {
            "lines": {"type": "integer"},
            "words": {"type": "integer"},
            "top": {"type": "array", "items": {"type": "array"}},
        },
    },
    soft_time_limit=60,
    time_limit=90,
    retry=RetryPolicy(max_attempts=3, on=("FlakySourceError",), backoff_seconds=0.5),
)
