"""The implementation of `word_report`: imported by the worker only."""

from collections import Counter

from taskline import Context, implements
from tasks import WORD_REPORT, WordReportParams


class FlakySourceError(Exception):
    """A failure worth another attempt (the declaration's retry policy names it)."""


@implements(WORD_REPORT)
def word_report(context: Context, params: WordReportParams) -> dict[str, object]:
    """Read the text line by line, reporting progress and stopping when asked to."""
    if context.attempt <= params.fail_attempts:
        raise FlakySourceError(f"attempt {context.attempt} fails on purpose")
    lines = params.text.splitlines() or [""]
    words: Counter[str] = Counter()
    for done, line in enumerate(lines, start=1):
        context.checkpoint()  # a cancel request stops the run here
        words.update(line.lower().split())
        context.progress(done, len(lines), value=sum(words.values()))
        context.pace(done / len(lines))  # spreads `delay_seconds` over the lines
    context.logger.info("counted %d words", sum(words.values()))
    return {"lines": len(lines), "words": sum(words.values()), "top": words.most_common(params.top)}
