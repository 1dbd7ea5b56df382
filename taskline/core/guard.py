"""The production guard: with TASKLINE_ENV=production every process refuses unsafe settings.

The API, the worker, the scheduler, the Flower launcher and the container's entrypoint (before
supervisord) each check the same rules, so no part of the stack runs on a published password,
RabbitMQ's guest, a Redis without a password or a console open to the network. Each refusal
names the setting and how to fix it. Development (the default) checks nothing.
"""

import ipaddress
import sys
from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from pydantic import SecretStr

from taskline.core.settings import PREFIX, Settings, get_settings

MIN_SECRET_LENGTH = 16
# Values published in this repository or by RabbitMQ; the Settings defaults are added below.
KNOWN_VALUES = frozenset({"guest", "taskline-dev-password"})
FIX_SECRET = "run `make secrets` or set a long random value"


def _development_values() -> frozenset[str]:
    """Every published value: the secrets' development defaults and KNOWN_VALUES."""
    defaults = {
        field.default.get_secret_value()
        for field in Settings.model_fields.values()
        if isinstance(field.default, SecretStr)
    }
    return KNOWN_VALUES | defaults


def _weakness(value: str) -> str | None:
    """Why a secret is unfit for production, or None."""
    if value in _development_values():
        return "is a published development value"
    if len(value) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} characters"
    return None


def _secret_problems(settings: Settings) -> list[str]:
    problems = []
    for name, field in Settings.model_fields.items():
        if field.annotation is not SecretStr:
            continue
        if name == "admin_password" and (settings.users or settings.users_file):
            continue  # unused: the users come from TASKLINE_USERS or TASKLINE_USERS_FILE
        why = _weakness(getattr(settings, name).get_secret_value())
        if why:
            problems.append(f"{PREFIX}{name.upper()} {why}: {FIX_SECRET}")
    return problems


def _parse(setting: str, url: str) -> SplitResult | str:
    """The URL split into parts, or the problem of a URL that cannot be parsed."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number)
    except ValueError as exc:
        return f"{setting} cannot be parsed ({exc}): write it as scheme://user:password@host:port"
    return parts


def _broker_problems(url: str) -> list[str]:
    setting = f"{PREFIX}BROKER_URL"
    fix = f"create a RabbitMQ user with a long random password and put both in {setting}"
    problems = []
    # kombu accepts several URLs, separated by ';', to fail over between them.
    for one in filter(None, (part.strip() for part in url.split(";"))):
        parts = _parse(setting, one)
        if isinstance(parts, str):
            problems.append(parts)
        elif not parts.username:
            problems.append(
                f"{setting} has no user or password (RabbitMQ would be asked for guest/guest): "
                f"{fix}, e.g. amqp://taskline:PASSWORD@{parts.hostname or 'host'}:5672//"
            )
        elif unquote(parts.username) == "guest":
            problems.append(f"{setting} uses RabbitMQ's guest user: {fix}")
        elif why := _weakness(unquote(parts.password or "")):
            problems.append(f"{setting}'s password {why}: {fix}")
    return problems


def _redis_problems(url: str) -> list[str]:
    setting = f"{PREFIX}REDIS_URL"
    parts = _parse(setting, url)
    if isinstance(parts, str):
        return [parts]
    password = parts.password or parse_qs(parts.query).get("password", [""])[0]
    if not password:
        return [
            f"{setting} has no password: set Redis's requirepass (or an ACL user) to a long "
            "random value and put it in the URL, e.g. redis://:PASSWORD@host:6379/0"
        ]
    why = _weakness(unquote(password))
    return [f"{setting}'s password {why}: {FIX_SECRET} (and set it in Redis)"] if why else []


def is_loopback(host: str) -> bool:
    """Whether an address to listen on is reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a name, or "" (every interface)


def _console_problems(settings: Settings) -> list[str]:
    if settings.allow_public_consoles:
        return []
    consoles = {
        "CONSOLE_HOST": (settings.console_host, "the supervisord console can stop every process"),
        "FLOWER_HOST": (settings.flower_host, "Flower shows every task's arguments and results"),
    }
    return [
        f"{PREFIX}{name} is {host or 'every interface'!r}, not a loopback address ({why}): "
        f"keep it on 127.0.0.1 and reach it through an SSH tunnel, or set "
        f"{PREFIX}ALLOW_PUBLIC_CONSOLES=true"
        for name, (host, why) in consoles.items()
        if not is_loopback(host)
    ]


def production_problems(settings: Settings) -> list[str]:
    """What keeps these settings from being fit for production (empty when they are)."""
    return [
        *_secret_problems(settings),
        *_broker_problems(settings.broker_url),
        *_redis_problems(settings.redis_url),
        *_console_problems(settings),
    ]


class UnsafeProductionError(RuntimeError):
    """Production settings that a Taskline process refuses to start with."""


def check(settings: Settings, process: str) -> None:
    """Raise UnsafeProductionError in production when the settings have problems."""
    if settings.env != "production":
        return
    if problems := production_problems(settings):
        raise UnsafeProductionError(
            f"Taskline {process} refuses to start in production ({PREFIX}ENV=production):\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )


def exit_if_unsafe(settings: Settings, process: str) -> None:
    """check(), ending the process with the refusal on stderr (status 1) instead of a trace."""
    try:
        check(settings, process)
    except UnsafeProductionError as exc:
        raise SystemExit(str(exc)) from None


def main() -> None:
    """`python -m taskline.core.guard [PROCESS]`: check the settings (exit 1 if unsafe)."""
    exit_if_unsafe(get_settings(), sys.argv[1] if len(sys.argv) > 1 else "supervisord")


if __name__ == "__main__":
    main()
