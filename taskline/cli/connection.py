"""Which API to call and as whom, and one place that turns HTTP failures into CliError.

Precedence: a flag, then the environment (`TASKLINE_URL`, `TASKLINE_TOKEN`, `TASKLINE_USER` +
`TASKLINE_PASSWORD`), then the login stored by `taskline login` (used only for its own URL).
"""

import getpass
import json
import os
import sys
from dataclasses import dataclass
from typing import Any

import httpx

from taskline.cli import config
from taskline.cli.exits import CliError, ExitCode

DEFAULT_URL = "http://127.0.0.1:8000"
TIMEOUT = httpx.Timeout(10.0)
TEXT_SHOWN = 300  # characters of a refusal that is not JSON


@dataclass(frozen=True, slots=True)
class Options:
    """The connection flags of a command, merged with those given before the command."""

    url: str | None = None
    token: str | None = None
    user: str | None = None
    password: str | None = None

    def over(self, outer: "Options") -> "Options":
        """Each flag as given here, else as given before the command name (`outer`)."""
        return Options(
            self.url or outer.url,
            self.token or outer.token,
            self.user or outer.user,
            self.password or outer.password,
        )


def resolve_url(flag: str | None) -> str:
    """The API's base URL; a usage error unless it is http(s)."""
    stored = config.load()
    url = flag or os.environ.get("TASKLINE_URL") or (stored and stored.url) or DEFAULT_URL
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise CliError(f"--url must start with http:// or https://, not {url!r}", ExitCode.USAGE)
    return url


def credentials(options: Options, url: str) -> httpx.Auth | dict[str, str] | None:
    """HTTP Basic auth, bearer headers, or None (anonymous) for this URL."""
    env = os.environ
    if options.token:
        return {"Authorization": f"Bearer {options.token}"}
    if options.user or options.password:
        return basic(
            options.user or env.get("TASKLINE_USER"),
            options.password or env.get("TASKLINE_PASSWORD"),
        )
    if env.get("TASKLINE_TOKEN"):
        return {"Authorization": f"Bearer {env['TASKLINE_TOKEN']}"}
    # TASKLINE_PASSWORD alone is what `login` reads: after it, the kept token is used.
    if env.get("TASKLINE_USER"):
        return basic(env.get("TASKLINE_USER"), env.get("TASKLINE_PASSWORD"))
    stored = config.load()
    if stored is not None and stored.url.rstrip("/") == url:
        return {"Authorization": f"Bearer {stored.token}"}
    return None


def basic(user: str | None, password: str | None) -> httpx.BasicAuth:
    """HTTP Basic; a missing password is asked for on a terminal, else half a pair is refused."""
    if user and password is None and sys.stdin.isatty():
        password = getpass.getpass(f"password of {user}: ")
    if not user or password is None:
        missing = "--password (or TASKLINE_PASSWORD)" if user else "--user (or TASKLINE_USER)"
        raise CliError(f"HTTP Basic needs a user and a password: give {missing}", ExitCode.USAGE)
    return httpx.BasicAuth(user, password)


def open_client(options: Options, anonymous: bool = False) -> httpx.Client:
    """An HTTP client of the API, signed in as the options say (unless `anonymous`)."""
    url = resolve_url(options.url)
    auth = None if anonymous else credentials(options, url)
    headers = {"User-Agent": "taskline-cli"}
    if isinstance(auth, dict):
        headers.update(auth)
        auth = None
    return httpx.Client(base_url=url, auth=auth, headers=headers, timeout=TIMEOUT)


def call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """Send a request; a CliError (exit 3) for a refusal (4xx/5xx) or no connection."""
    try:
        response = client.request(method, path, **kwargs)
    except httpx.RequestError as exc:  # no connection, a garbled body, a redirect loop
        raise unreachable(client, exc) from exc
    check(response)
    return response


def check(response: httpx.Response) -> None:
    """Raise the API's refusal as a CliError carrying its `detail`."""
    if response.status_code < 400:
        return
    if not response.is_closed:
        response.read()
    raise refusal(response)


def refusal(response: httpx.Response) -> CliError:
    """The status line, the API's detail and any Retry-After, as one message."""
    try:
        body = response.json()
    except (ValueError, RecursionError):  # a proxy's page, say: its start is enough
        text = response.text.strip()
        detail = text[:TEXT_SHOWN] + ("…" if len(text) > TEXT_SHOWN else "") or None
    else:
        detail = body.get("detail") if isinstance(body, dict) else body
    message = f"HTTP {response.status_code} {response.reason_phrase}"
    if detail is not None:
        message += f": {describe(detail)}"
    if "retry-after" in response.headers:
        message += f" (retry after {response.headers['retry-after']} s)"
    return CliError(message, ExitCode.HTTP, detail, response.status_code)


def unreachable(client: httpx.Client, exc: Exception) -> CliError:
    """No answer at all: the same exit code as a refusal, saying where it went."""
    return CliError(f"cannot reach {client.base_url}: {exc or type(exc).__name__}", ExitCode.HTTP)


def describe(detail: Any) -> str:
    """The API's `detail` as one readable line: a message, or each refused field."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, dict) and "message" in detail:
        text = str(detail["message"])
        if isinstance(error := detail.get("error"), dict):
            text += f": {error.get('type', '')}: {error.get('message', '')}"
        if detail.get("task_id"):
            text += f" (task {detail['task_id']})"
        return text
    if (
        isinstance(detail, list)
        and detail
        and all(isinstance(d, dict) and "msg" in d for d in detail)
    ):
        return "; ".join(field_error(d) for d in detail)
    return json.dumps(detail, ensure_ascii=False)


def field_error(error: dict[str, Any]) -> str:
    """`params.digits: Input should be less than or equal to 10000` from a 422 item; any
    `loc` (a list, one value, none) reads, since a server that is not ours may send anything."""
    loc = error.get("loc")
    parts = loc if isinstance(loc, list) else [] if loc is None else [loc]
    names = [str(part) for part in parts if part not in ("body", "query", "path")]
    return f"{'.'.join(names)}: {error['msg']}" if names else str(error["msg"])
