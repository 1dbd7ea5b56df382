"""The lines of core.log_format: the access line written without a record reads as a record
would, in both formats; secrets hidden in JSON as in text; which ids a line takes as they are."""

import io
import json
import logging
import sys
from collections.abc import Iterator

import pytest

from taskline.core import log_tags
from taskline.core.log_format import ACCESS_LOGGER, AccessLines, LineHandler
from taskline.core.log_tags import Tags


@pytest.fixture(params=["json", "text"])
def handler(request: pytest.FixtureRequest) -> Iterator[LineHandler]:
    yield LineHandler(io.StringIO(), request.param, "api")


def record_line(handler: LineHandler, message: str, **extra: object) -> str:
    logger = logging.getLogger("tests.log_format")
    record = logger.makeRecord(logger.name, logging.INFO, "", 0, message, (), None, extra=extra)
    return handler.format(record) + "\n"


def test_the_access_line_reads_as_a_record_of_the_access_logger_would(
    handler: LineHandler,
) -> None:
    tags = Tags("req-1", "6f1c-task", "alice")
    created = 1_800_000_000.25
    fast = AccessLines(handler, 4321)(created, "GET", "/tasks/{task_id}", 200, 1.25, tags)
    logger = logging.getLogger(ACCESS_LOGGER)
    record = logger.makeRecord(
        ACCESS_LOGGER,
        logging.INFO,
        "",
        0,
        "GET /tasks/{task_id} 200 1.2 ms",
        (),
        None,
        extra={"method": "GET", "route": "/tasks/{task_id}", "status": 200, "duration_ms": 1.25},
    )
    record.created, record.process, record.processName = created, 4321, "MainProcess"
    token = log_tags.begin(tags)
    try:
        formatted = handler.format(record) + "\n"
    finally:
        log_tags.end(token)
    if handler.kind == "json":
        assert list(json.loads(fast).items()) == list(json.loads(formatted).items())
        assert json.loads(fast)["time"] == "2027-01-15T08:00:00.250Z"
    else:
        assert fast == formatted
        assert fast.startswith("2027-01-15T08:00:00.250Z INFO    taskline.access api[4321] GET")


def test_secrets_are_hidden_in_either_format(handler: LineHandler) -> None:
    said = (
        "GET /tasks/t/ws?access_token=tok-123456789 headers [(b'authorization', b'Bearer "
        "tok-abcdefghij'), (b'cookie', b'session=ck-1')] amqp://taskline:pw-broker@rabbit// "
        '{"password": "pw-json"}'
    )
    line = record_line(handler, said)
    for secret in ("tok-123456789", "tok-abcdefghij", "ck-1", "pw-broker", "pw-json"):
        assert secret not in line
    assert line.count("[hidden]") == 5
    if handler.kind == "json":
        assert "access_token=[hidden]" in json.loads(line)["message"]


def test_a_urls_password_is_hidden_whole_in_a_message_and_an_exception(
    handler: LineHandler,
) -> None:
    """A URL's userinfo ends at its last `@` (as redis-py and kombu read it): a password
    holding an `@` is hidden up to there, never left in part."""
    url = "redis://default:pw-9z@rest-of-it@127.0.0.1:6380/0"
    try:
        raise ConnectionError(f"cannot reach {url}")
    except ConnectionError:
        logger = logging.getLogger("tests.log_format")
        record = logger.makeRecord(
            logger.name, logging.ERROR, "", 0, f"at {url}", (), sys.exc_info()
        )
    line = handler.format(record)
    assert "pw-9z" not in line and "rest-of-it" not in line
    assert line.count("redis://default:[hidden]@127.0.0.1:6380/0") == 2


def test_an_id_is_taken_as_it_is_only_when_it_cannot_break_a_line() -> None:
    assert log_tags.sane("6f1c1c1e-0b5a-4c1e-9d2e-1f7a2b3c4d5e") is not None
    assert log_tags.sane("Root=1-5759e988-bd862e3fe1be46a994272793") is not None
    for bad in ("", "a b", 'a"b', "a\nb", "a\\b", "x" * 129, "é"):
        assert log_tags.sane(bad) is None
