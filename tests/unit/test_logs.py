"""What the processes log: no bearer token (uvicorn's handshake lines), no task result
(Celery's success line), whatever handler writes the record."""

import io
import logging
from collections.abc import Iterator

import pytest

from taskline.core.logs import hide_results, hide_tokens


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """What the uvicorn and Celery trace loggers write, through a handler of the test's."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    loggers = [logging.getLogger(n) for n in ("uvicorn.error", "celery.app.trace")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def test_a_websocket_handshake_is_logged_without_its_access_token(written: io.StringIO) -> None:
    hide_tokens()
    logging.getLogger("uvicorn.error").info(
        '%s - "WebSocket %s" [accepted]',
        "127.0.0.1:5",
        "/tasks/t/ws?last_event_id=1-0&access_token=s3cr3t-token&x=1",
    )
    line = written.getvalue()
    assert "s3cr3t-token" not in line
    assert '"WebSocket /tasks/t/ws?last_event_id=1-0&access_token=[hidden]&x=1"' in line


def test_a_task_success_is_logged_without_its_result(written: io.StringIO) -> None:
    from celery.app import trace

    hide_results()
    context = {"id": "t1", "name": "reverse", "return_value": "'private words'", "runtime": 0.1}
    trace.info(trace.LOG_SUCCESS, context)
    line = written.getvalue()
    assert "private words" not in line
    assert line.strip() == "Task reverse[t1] succeeded in 0.1s"
