"""Webhooks: which URLs hear of a task's end, and the signature that proves a call is ours.

A call carries `Taskline-Signature: t=<unix seconds>,v1=<hex>`, the HMAC-SHA256 under
TASKLINE_WEBHOOK_SECRET of `t + "." + body` (Stripe's scheme): the timestamp inside the signed
text lets a receiver refuse an old call replayed, and `v1` leaves room for another scheme.

Global webhooks (TASKLINE_WEBHOOKS) are entries separated by `;`, each `STATES=URL` with the
ended states comma-separated (SUCCESS, FAILURE, CANCELLED, or `*` for all three), e.g.
`FAILURE=https://alerts.example/hook;SUCCESS,FAILURE=https://ci.example/done`. A URL holds no
`;`. A task's own `callback_url` hears of every end, while its host is on TASKLINE_WEBHOOK_HOSTS
(checked at submission and again at each delivery).
"""

import hashlib
import hmac
import time
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

SIGNATURE_HEADER = "Taskline-Signature"
# Longest callback_url or global webhook URL (characters). A constant of the schema, not a
# setting: it bounds a field of the request (422 beyond, and at most this much per record and
# per delivery), as the task name's and the Idempotency-Key's lengths are; 2,048 is what
# browsers, proxies and HTTP servers commonly accept, so a longer URL would be refused by the
# receiver's side anyway (README, Webhooks).
MAX_URL_LENGTH = 2048
ENDED = ("SUCCESS", "FAILURE", "CANCELLED")


class WebhookSettingError(ValueError):
    """A webhook setting that cannot be read; its message says which and why."""


@dataclass(frozen=True, slots=True)
class Hook:
    """A global webhook: the ended states it hears of, and where."""

    states: frozenset[str]
    url: str


def url_problem(url: str) -> str | None:
    """Why `url` cannot be called (not http(s), no host, too long, a control character), or
    None. urlsplit drops tabs and newlines silently, but the URL is kept as given: one would
    never be called (httpx refuses it) and would forge a line in a text log."""
    if len(url) > MAX_URL_LENGTH:
        return f"is longer than {MAX_URL_LENGTH} characters"
    if any(ord(c) < 0x20 or c == "\x7f" for c in url):
        return "holds a control character"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError:
        return "is not a URL"
    if parts.scheme not in ("http", "https"):
        return "is not an http:// or https:// URL"
    if not parts.hostname:
        return "names no host"
    if parts.username is not None or parts.password is not None:
        return "holds credentials"
    return None


def hosts_of(text: str) -> frozenset[str]:
    """The allowed callback hosts of TASKLINE_WEBHOOK_HOSTS (comma-separated, any case)."""
    return frozenset(h.strip().lower() for h in text.split(",") if h.strip())


def allowed(url: str, hosts: frozenset[str]) -> bool:
    """Whether a callback URL may be called: a good URL whose host is on the allow-list."""
    return url_problem(url) is None and (urlsplit(url).hostname or "").lower() in hosts


def hooks_of(text: str) -> tuple[Hook, ...]:
    """The global webhooks of TASKLINE_WEBHOOKS; WebhookSettingError names a bad entry."""
    found = []
    for entry in (e.strip() for e in text.split(";")):
        if not entry:
            continue
        states_text, equals, url = entry.partition("=")
        states = {s.strip().upper() for s in states_text.split(",") if s.strip()}
        if "*" in states:
            states = set(ENDED)
        wrong = states - set(ENDED)
        if not equals or not states or wrong:
            raise WebhookSettingError(
                f"TASKLINE_WEBHOOKS: {entry!r} is not STATES=URL with STATES among "
                f"{', '.join(ENDED)} or * (e.g. FAILURE=https://alerts.example/hook)"
            )
        problem = url_problem(url.strip())
        if problem:
            raise WebhookSettingError(f"TASKLINE_WEBHOOKS: {url.strip()!r} {problem}")
        found.append(Hook(frozenset(states), url.strip()))
    return tuple(found)


@lru_cache(maxsize=8)
def heard(text: str) -> frozenset[str]:
    """The ended states some global webhook of TASKLINE_WEBHOOKS hears of: the script that
    records an end in another state, of a task without a callback_url, leaves it out of the
    webhook outbox (core/lua/task.lua), as the deliverer would plan nothing for it."""
    return frozenset(state for hook in hooks_of(text) for state in hook.states)


def targets(state: str, callback_url: str | None, hooks: tuple[Hook, ...]) -> list[str]:
    """The URLs that hear of a task's end in `state`, each once, its own callback first."""
    found = [callback_url] if callback_url and state in ENDED else []
    found += [hook.url for hook in hooks if state in hook.states]
    return list(dict.fromkeys(found))


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    """The header value signing `body` at `timestamp` (unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    return f"t={timestamp},v1={hmac.new(secret, signed, hashlib.sha256).hexdigest()}"


def verify(
    secret: bytes, header: str, body: bytes, tolerance: float = 300, now: float | None = None
) -> bool:
    """Whether `header` signs `body` under `secret` within `tolerance` seconds of `now`:
    what a receiver does (constant-time comparison of every v1 given)."""
    parts = [part.partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in parts if key.strip() == "t"]
    given = [value.strip() for key, _, value in parts if key.strip() == "v1"]
    if len(stamps) != 1 or not stamps[0].strip().isdigit() or not given:
        return False
    timestamp = int(stamps[0])
    if abs((time.time() if now is None else now) - timestamp) > tolerance:
        return False
    expected = signature(secret, timestamp, body).rpartition("v1=")[2]
    return any(hmac.compare_digest(expected, value) for value in given)
