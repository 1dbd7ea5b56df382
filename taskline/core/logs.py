"""What reaches a log file: no bearer token, password or cookie, and no task result.

uvicorn logs every WebSocket handshake with its query string, whose `access_token` is a live
bearer token; Celery logs every task's success with its return value (genuine serials, users'
text). The filters below take both out of the record, whatever handler writes it. Every line
the processes write (core.log_format), in either format, also goes through `hide_secrets`:
whatever a library or an exception puts in a message, a token, a password, an Authorization
or Cookie header's value or a URL's password is replaced by `[hidden]`.
"""

import logging
import re
from collections.abc import Mapping

TOKEN = re.compile(r"(access_token=)[^&\s\"']*")
HIDDEN = "[hidden]"
# The loggers uvicorn writes requests and handshakes to (the access log may be turned on).
UVICORN_LOGGERS = ("uvicorn.error", "uvicorn.access")
CELERY_TRACE_LOGGER = "celery.app.trace"

# What stands for a secret in a line, each with the part kept before it (group 1).
SECRETS = (
    # A header's value, as a line or a repr of headers: `Authorization: Bearer …`,
    # `(b'cookie', b'session=…')`, `'x-api-key': '…'`.
    re.compile(
        r"((?:proxy-)?authorization|set-cookie|cookie|x-api-key)"
        r"([\"']?\s*[:=,]\s*(?:b?[\"'])?)[^\"'\r\n]+",
        re.IGNORECASE,
    ),
    # A credential given by name: `password=…`, `"access_token": "…"`, `SECRET=…`.
    re.compile(r"(password|passwd|secret|token)([\"']?\s*[:=]\s*[\"']?)[^\"'&\s,;}]+", re.I),
    # An Authorization value on its own: `Bearer eyJ…`, `Basic YWRtaW46…`.
    re.compile(r"\b(Bearer|Basic)(\s+)[A-Za-z0-9._~+/-]{8,}=*"),
    # A URL's password: `amqp://user:…@host`, up to the last `@` before the path, query or
    # fragment, where URL parsers end the userinfo (a password may hold an `@`).
    re.compile(r"([a-z][a-z0-9+.-]*://[^/\s:@]*)(:)[^\s/?#]+@", re.I),
)


def hide_secrets(text: str) -> str:
    """The text with every secret it shows replaced by `[hidden]`."""
    for pattern in SECRETS:
        text = pattern.sub(_hidden, text)
    return text


def _hidden(match: re.Match[str]) -> str:
    kept = match.group(1) + match.group(2)
    return f"{kept}{HIDDEN}@" if match.group(0).endswith("@") else f"{kept}{HIDDEN}"


class HideTokens(logging.Filter):
    """Replaces every `access_token=…` of a message by `access_token=[hidden]`."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "access_token=" in message:
            record.msg, record.args = TOKEN.sub(rf"\g<1>{HIDDEN}", message), None
        return True


class HideResults(logging.Filter):
    """Celery's "Task … succeeded in …s" line, without the return value (here or in `data`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, Mapping) and "return_value" in record.args:
            context = {**record.args, "return_value": HIDDEN}
            record.args = context
            record.msg = str(record.msg).replace(": %(return_value)s", "")
            if isinstance(getattr(record, "data", None), Mapping):
                setattr(record, "data", context)  # noqa: B010 (an `extra` of Celery's)
        return True


def hide_tokens() -> None:
    """Keep bearer tokens out of uvicorn's logs (once per process)."""
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, HideTokens) for f in logger.filters):
            logger.addFilter(HideTokens())


def hide_results() -> None:
    """Keep task results out of Celery's worker log (once per process)."""
    logger = logging.getLogger(CELERY_TRACE_LOGGER)
    if not any(isinstance(f, HideResults) for f in logger.filters):
        logger.addFilter(HideResults())
