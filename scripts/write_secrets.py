"""Write long random secrets into .env (`make secrets`; `make run` when there is no .env yet).

docker-compose.yml refuses to start without them, and `make run` uses them too. A value the
file already holds is never changed: only missing ones are added. The file is readable by its
owner only. A new file keeps TASKLINE_ENV=development for `make run`; the image always runs
with TASKLINE_ENV=production (set by the Dockerfile and docker-compose.yml, not by this file).
Standard library only: it runs before the virtual environment exists.
"""

import os
import re
import secrets
import sys
from pathlib import Path

SECRETS = (
    "TASKLINE_SERIAL_SECRET",
    "TASKLINE_ADMIN_PASSWORD",
    "TASKLINE_FLOWER_PASSWORD",
    "TASKLINE_CONSOLE_PASSWORD",
    "RABBITMQ_PASSWORD",
    "REDIS_PASSWORD",
)
HEADER = """\
# Secrets written by `make secrets` (scripts/write_secrets.py): keep this file private.
# docker-compose.yml reads them all; `make run` reads the TASKLINE_ ones.
# production: every process refuses development defaults (the image always sets it).
TASKLINE_ENV=development
"""
ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=", re.MULTILINE)


def new_value() -> str:
    """43 URL-safe characters (256 random bits): fit for URLs, compose and supervisord.

    Never one starting with "-", which a command line (redis-server's) would take for an option.
    """
    value = secrets.token_urlsafe(32)
    while value.startswith("-"):
        value = secrets.token_urlsafe(32)
    return value


def write_secrets(path: Path) -> list[str]:
    """Add every missing secret to `path` (created if need be, mode 0600); the names added."""
    existing = path.read_text() if path.exists() else None
    present = set(ASSIGNMENT.findall(existing or ""))
    missing = [name for name in SECRETS if name not in present]
    text = HEADER if existing is None else ""
    if missing and existing and not existing.endswith("\n"):
        text += "\n"
    text += "".join(f"{name}={new_value()}\n" for name in missing)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(descriptor, "a") as out:
        os.fchmod(descriptor, 0o600)
        out.write(text)
    return missing


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else ".env")
    added = write_secrets(path)
    kept = len(SECRETS) - len(added)
    print(f"{path}: {len(added)} secret(s) written, {kept} already there and kept")


if __name__ == "__main__":
    main()
