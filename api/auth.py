"""Who is calling: bearer tokens (OAuth2 password flow) or HTTP Basic for scripts.

Users and roles come from settings; passwords are argon2 hashes. Tokens are random strings
kept in Redis (by their SHA-256) with an expiry, so they can be revoked. Each API process
remembers a token it resolved for TOKEN_CACHE_SECONDS: a revoked token is refused at once by
the process that revoked it and within that time by the others.
`python -m api.auth` prints the hash of a password for the users setting.
"""

import getpass
import hashlib
import json
import secrets
import sys
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from anyio import to_thread
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import TTLCache
from redis.asyncio import Redis

from api.store import redis_errors
from core.settings import Settings

_hasher = PasswordHasher()
# Verified against when the user is unknown, so both cases take the same time.
_DUMMY_HASH = _hasher.hash("not a password")
# How long a process trusts a token it resolved without asking Redis again: every request
# carries one, and the lookup was a third of the cost of reading a task.
TOKEN_CACHE_SECONDS = 1.0
# How long a verified HTTP Basic password is trusted without running argon2 again.
BASIC_CACHE_SECONDS = 60.0
# Entries at most in each of these caches (the least recently used go first).
CACHE_SIZE = 10_000


class Role(StrEnum):
    ADMIN = "admin"  # every task
    USER = "user"  # own tasks only


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role

    def sees(self, owner: str) -> bool:
        """Whether this user may see a task of `owner` (others' tasks read as unknown)."""
        return self.role is Role.ADMIN or owner == self.name

    @property
    def owner_filter(self) -> str | None:
        """The owner to restrict listings to, or None for all."""
        return None if self.role is Role.ADMIN else self.name


def load_users(settings: Settings) -> dict[str, tuple[str, Role]]:
    """name → (argon2 hash, role), from the users setting, the users file or the admin."""
    raw = settings.users or (Path(settings.users_file).read_text() if settings.users_file else "")
    if not raw:
        return {"admin": (_hasher.hash(settings.admin_password.get_secret_value()), Role.ADMIN)}
    return {
        name: (entry["password_hash"], Role(entry.get("role", Role.USER)))
        for name, entry in json.loads(raw).items()
    }


class Authenticator:
    """Checks passwords and tokens."""

    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.users = load_users(settings)
        self.redis = redis
        self.prefix = settings.key_prefix
        self.ttl = settings.token_ttl_seconds
        # Basic auth checks a password on every request: remember recent successes (by a
        # digest of the credentials) instead of paying argon2's cost each time.
        self._verified: TTLCache[str, User] = TTLCache(CACHE_SIZE, BASIC_CACHE_SECONDS)
        # token key → its user, as Redis last said
        self._resolved: TTLCache[str, User] = TTLCache(CACHE_SIZE, TOKEN_CACHE_SECONDS)

    def _check(self, name: str, password: str) -> User | None:
        stored, role = self.users.get(name, (_DUMMY_HASH, None))
        try:
            _hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        return User(name, role) if role else None

    async def login(self, name: str, password: str) -> User | None:
        """The user if the password is right (argon2 runs off the event loop)."""
        digest = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        if user := self._verified.get(digest):
            return user
        user = await to_thread.run_sync(self._check, name, password)
        if user:
            self._verified[digest] = user
        return user

    def _token_key(self, token: str) -> str:
        return f"{self.prefix}token:{hashlib.sha256(token.encode()).hexdigest()}"

    async def issue(self, user: User) -> str:
        """A new bearer token for the user, valid for the token TTL."""
        token = secrets.token_urlsafe(32)
        with redis_errors():
            await self.redis.set(
                self._token_key(token), json.dumps([user.name, user.role]), ex=self.ttl
            )
        return token

    async def resolve(self, token: str) -> User | None:
        """The user a token belongs to, or None if it is unknown, expired or revoked."""
        key = self._token_key(token)
        if user := self._resolved.get(key):
            return user
        with redis_errors():
            found = await self.redis.get(key)
        if not found:
            return None
        name, role = json.loads(found)
        if name not in self.users:
            return None
        user = self._resolved[key] = User(name, Role(role))
        return user

    async def revoke(self, token: str) -> None:
        key = self._token_key(token)
        self._resolved.pop(key, None)
        with redis_errors():
            await self.redis.delete(key)


def main() -> None:
    """Print the argon2 hash of a password read from stdin (or asked for)."""
    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
    print(_hasher.hash(password))


if __name__ == "__main__":
    main()
