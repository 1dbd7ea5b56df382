"""Where `login` keeps its token: `$XDG_CONFIG_HOME/taskline/token` (or ~/.config/…), 0600.

The file holds the token and the URL it was issued by, so a token is never sent to another
server and `--url` can be left out after `login`.
"""

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class StoredLogin:
    """A token and the API that issued it."""

    url: str
    token: str
    user: str


def config_dir() -> Path:
    """The user's config directory for taskline, by the XDG base directory rules."""
    base = os.environ.get("XDG_CONFIG_HOME") or ""
    root = Path(base) if Path(base).is_absolute() else Path.home() / ".config"
    return root / "taskline"


def token_path() -> Path:
    """The file `login` writes and every later command reads."""
    return config_dir() / "token"


def load() -> StoredLogin | None:
    """The stored login, or None when there is none or it cannot be read."""
    try:
        data = json.loads(token_path().read_text())
        return StoredLogin(str(data["url"]), str(data["token"]), str(data.get("user", "")))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def save(login: StoredLogin) -> Path:
    """Write the login readable by its owner only: created 0600, then renamed into place."""
    directory = config_dir()
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = token_path()
    staging = path.with_name(f".token.{os.getpid()}")
    with contextlib.suppress(FileNotFoundError):
        staging.unlink()
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump({"url": login.url, "token": login.token, "user": login.user}, out)
    os.replace(staging, path)
    return path


def forget() -> bool:
    """Remove the stored login; whether there was one."""
    try:
        token_path().unlink()
    except FileNotFoundError:
        return False
    return True
