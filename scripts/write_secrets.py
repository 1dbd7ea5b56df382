"""Write long random secrets into .env (`make secrets`, and first thing in every `make run`).

docker-compose.yml refuses to start without them, and `make run` uses them too: its RabbitMQ
user and virtual host and its own Redis (scripts/ensure-services.sh creates and starts them)
take the same passwords, through the URLs written here. A value the file already holds is
never changed: only missing ones are added. The file is readable by its owner only. A new
file keeps TASKLINE_ENV=development for `make run`; the image always runs
with TASKLINE_ENV=production (set by the Dockerfile and docker-compose.yml, not by this file).
Standard library only: it runs before the virtual environment exists.
"""

import os
import re
import secrets
import sys
from pathlib import Path
from urllib.parse import quote

SECRETS = (
    "TASKLINE_SERIAL_SECRET",
    "TASKLINE_WEBHOOK_SECRET",
    "TASKLINE_ADMIN_PASSWORD",
    "TASKLINE_FLOWER_PASSWORD",
    "TASKLINE_CONSOLE_PASSWORD",
    "RABBITMQ_PASSWORD",
    "REDIS_PASSWORD",
)
HEADER = """\
# Secrets written by `make secrets` (scripts/write_secrets.py): keep this file private.
# docker-compose.yml reads the passwords; `make run` reads the TASKLINE_ ones, whose URLs
# hold the RabbitMQ and Redis passwords of `make run`'s own user and Redis.
# production: every process refuses development defaults (the image always sets it).
TASKLINE_ENV=development
"""
VALUE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$", re.MULTILINE)
# `make run`'s own Redis, beside the one on 6379 that other programs (and the tests) may share.
RUN_REDIS_PORT = 6380


def new_value() -> str:
    """43 URL-safe characters (256 random bits): fit for URLs, compose and supervisord.

    Never one starting with "-", which a command line (redis-server's) would take for an option.
    """
    value = secrets.token_urlsafe(32)
    while value.startswith("-"):
        value = secrets.token_urlsafe(32)
    return value


def run_urls(values: dict[str, str]) -> dict[str, str]:
    """`make run`'s broker and Redis URLs: RabbitMQ's user (RABBITMQ_USER, as compose names it)
    in a virtual host of its name, and Redis on RUN_REDIS_PORT, with the passwords in `values`."""
    user = quote(values.get("RABBITMQ_USER") or "taskline", safe="")
    rabbitmq, redis = (quote(values[name], safe="") for name in SECRETS[-2:])
    return {
        "TASKLINE_BROKER_URL": f"amqp://{user}:{rabbitmq}@127.0.0.1:5672/{user}",
        "TASKLINE_REDIS_URL": f"redis://:{redis}@127.0.0.1:{RUN_REDIS_PORT}/0",
    }


def write_secrets(path: Path) -> list[str]:
    """Add every missing secret to `path` (created if need be, mode 0600); the names added."""
    existing = path.read_text() if path.exists() else None
    values = {name: value.strip("'\"") for name, value in VALUE.findall(existing or "")}
    added = {name: new_value() for name in SECRETS if name not in values}
    urls = run_urls(values | added)
    added |= {name: url for name, url in urls.items() if name not in values}
    text = HEADER if existing is None else ""
    if added and existing and not existing.endswith("\n"):
        text += "\n"
    text += "".join(f"{name}={value}\n" for name, value in added.items())
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as out:
        os.fchmod(descriptor, 0o600)
        out.write(text)
    return list(added)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    added = write_secrets(path)
    kept = len(SECRETS) + 2 - len(added)
    print(f"{path}: {len(added)} secret(s) written, {kept} already there and kept")


if __name__ == "__main__":
    main()
