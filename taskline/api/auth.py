"""Who is calling: bearer tokens (OAuth2 password flow) or HTTP Basic for scripts.

Users and roles come from settings (an admin reads and changes every task, a viewer reads
every task and changes nothing, a user reads and changes their own); passwords are argon2
hashes, checked on threads of their own (api.passwords) behind the sign-in throttle
(api.throttle). Tokens are random strings kept in Redis (by their SHA-256) with an expiry, so
they can be revoked, one or all of a user.
A token names only its user: the role is read from the users setting whenever the token is
resolved, so a demoted admin's tokens act as a user's and a removed user's stop working.
Each API process remembers a token it resolved for TOKEN_CACHE_SECONDS from the moment it
asked Redis (less if the token expires sooner). Every process answers alike all the same, by
construction rather than by telling each other: a revocation answers only TOKEN_CACHE_SECONDS
after it deleted the token, when every answer remembered from before, in any process, has
lapsed; so once a revocation is answered no API process takes the token. An HTTP Basic
password remembered by one process and not another gives the same answer either way: users
and their hashes are configuration, the same in every process, and a remembered password
still passes the sign-in throttle (api.throttle).
`python -m taskline.api.auth` prints the hash of a password for the users setting.
"""

import asyncio
import getpass
import hashlib
import json
import secrets
import sys
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from cachetools import TLRUCache, TTLCache

from taskline.api.passwords import HASHER, PasswordChecks
from taskline.api.store import TaskStore, redis_errors
from taskline.api.throttle import SigninThrottle
from taskline.core.records import USER_NAME
from taskline.core.replies import text_or_none
from taskline.core.settings import Settings

# Verified against when the user is unknown, so both cases take the same time.
_DUMMY_HASH = HASHER.hash("not a password")
# How long a process trusts a token it resolved without asking Redis again: every request
# carries one, and the lookup was a third of the cost of reading a task.
TOKEN_CACHE_SECONDS = 1.0
# How long a verified HTTP Basic password is trusted without running argon2 again.
BASIC_CACHE_SECONDS = 60.0
# Entries at most in each of these caches (the least recently used go first).
CACHE_SIZE = 10_000
# Tokens revoked by one script: each batch blocks Redis for about a millisecond.
REVOKE_BATCH = 500


class Role(StrEnum):
    ADMIN = "admin"  # every task
    VIEWER = "viewer"  # reads every task as an admin does, changes nothing (403)
    USER = "user"  # own tasks only


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role

    def sees(self, owner: str) -> bool:
        """Whether this user may see a task of `owner` (others' tasks read as unknown)."""
        return self.role is not Role.USER or owner == self.name

    @property
    def changes(self) -> bool:
        """Whether this user may change anything (create, edit, cancel, delete…): every role
        but a viewer's."""
        return self.role is not Role.VIEWER

    @property
    def reads_tracebacks(self) -> bool:
        """Whether this user reads a failure's traceback (paths and code of the worker's
        host: an operator's, not every user's)."""
        return self.role is Role.ADMIN

    @property
    def owner_filter(self) -> str | None:
        """The owner to restrict listings to, or None for all."""
        return None if self.role is not Role.USER else self.name


def load_users(settings: Settings) -> dict[str, tuple[str, Role]]:
    """name → (argon2 hash, role), from the users setting, the users file or the admin.

    Names go into Redis keys and task records: one outside USER_NAME is refused here, so the
    API does not start with it.
    """
    raw = settings.users or (Path(settings.users_file).read_text() if settings.users_file else "")
    if not raw:
        return {"admin": (HASHER.hash(settings.admin_password.get_secret_value()), Role.ADMIN)}
    users = {
        name: (entry["password_hash"], _role(name, entry.get("role", Role.USER)))
        for name, entry in json.loads(raw).items()
    }
    if bad := [name for name in users if not USER_NAME.fullmatch(name)]:
        raise ValueError(
            f"user names {bad!r} are not allowed: a name is 1 to 64 of A-Z a-z 0-9 _ . -"
        )
    return users


def _role(name: str, role: str) -> Role:
    """A configured role, or ValueError naming the user and the roles there are."""
    try:
        return Role(role)
    except ValueError:
        roles = ", ".join(repr(r.value) for r in Role)
        raise ValueError(f"user {name!r} has role {role!r}: a role is one of {roles}") from None


class Authenticator:
    """Checks passwords and tokens."""

    def __init__(self, settings: Settings, store: TaskStore) -> None:
        self.users = load_users(settings)
        self.store = store
        self.redis = store.redis
        self.keys = store.keys
        self.ttl = settings.token_ttl_seconds
        self.most_tokens = settings.max_tokens_per_user
        self.throttle = SigninThrottle(store, settings)
        self.checks = PasswordChecks(settings.signin_hash_threads, settings.signin_hash_waiting)
        # Basic auth checks a password on every request: remember recent successes (by a
        # digest of the credentials) instead of paying argon2's cost each time.
        self._verified: TTLCache[str, User] = TTLCache(CACHE_SIZE, BASIC_CACHE_SECONDS)
        # token key → its user, as Redis last said, and until when (monotonic) that holds
        self._resolved: TLRUCache[str, tuple[User, float]] = TLRUCache(CACHE_SIZE, ttu=_until)

    async def login(self, name: str, password: str, address: str) -> User | None:
        """The user if the password is right. Refused (429) while the name or the address is
        locked out, even for a right password; (503) while too many checks are under way."""
        digest = hashlib.sha256(f"{name}\0{password}".encode()).hexdigest()
        if user := self._verified.get(digest):
            await self.throttle.check(name, address)
            return user
        if self.checks.full:  # a locked-out caller is told so (429), not that we are busy
            await self.throttle.check(name, address)
        stored, role = self.users.get(name, (_DUMMY_HASH, None))
        # Shielded: once a check holds its place, its outcome is told even if the client
        # goes away meanwhile.
        right = await asyncio.shield(self._check(name, password, address, stored, role))
        if not (right and role):
            return None
        user = self._verified[digest] = User(name, role)
        return user

    async def _check(
        self, name: str, password: str, address: str, stored: str, role: Role | None
    ) -> bool:
        """Check the password behind the throttle's gate, and tell the throttle how it went."""
        attempt = secrets.token_hex(8)
        matches = await self.checks.verify(
            stored, password, lambda: self.throttle.begin(name, address, attempt)
        )
        if matches and role:
            await self.throttle.succeeded(name, address, attempt)
            return True
        await self.throttle.failed(name, address, attempt)
        return False

    def _token_key(self, token: str) -> str:
        return self.keys.token(hashlib.sha256(token.encode()).hexdigest())

    async def issue(self, user: User) -> str:
        """A new bearer token for the user, valid for the token TTL; the user's oldest token is
        revoked if they would hold more than the tokens-per-user setting (and then, as by
        `revoke`, this answers once no API process takes it)."""
        token = secrets.token_urlsafe(32)
        issue = self.store.transitions.issue_token(
            user.name, self._token_key(token), self.ttl * 1000, self.most_tokens
        )
        if await self.store.change(issue):  # an oldest was revoked: as `revoke`, wait it out
            await asyncio.sleep(TOKEN_CACHE_SECONDS)
        return token

    async def resolve(self, token: str) -> User | None:
        """The user a token belongs to, with their role as configured now; None if the token
        is unknown, expired or revoked, or its user is no longer configured."""
        key = self._token_key(token)
        if remembered := self._resolved.get(key):
            return remembered[0]
        asked = time.monotonic()
        with redis_errors():
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.get(key)
                pipe.pttl(key)
                value, ttl_ms = await pipe.execute()
        found = text_or_none(value)
        if not found:
            return None
        # Tokens issued before roles were read from the settings hold [name, role].
        name = json.loads(found)[0] if found.startswith("[") else found
        if name not in self.users:
            return None
        user = User(name, self.users[name][1])
        # Trusted from when it was asked: no longer than a revocation waits, nor past expiry.
        until = asked + min(TOKEN_CACHE_SECONDS, ttl_ms / 1000 if ttl_ms > 0 else 0)
        if time.monotonic() < until:
            self._resolved[key] = (user, until)
        return user

    async def revoke(self, token: str) -> None:
        """Revoke one token; answers once no API process takes it any more."""
        key = self._token_key(token)
        self._resolved.pop(key, None)
        with redis_errors():
            await self.redis.delete(key)
        await asyncio.sleep(TOKEN_CACHE_SECONDS)  # what other processes remember has lapsed

    async def revoke_all(self, name: str) -> int:
        """Revoke every token of a user (how many were live), REVOKE_BATCH per script, so
        that Redis serves others between batches however many tokens there are. A token
        issued meanwhile may be kept; every one held when this began is revoked, and taken by
        no API process once this returns."""
        for key in list(self._resolved):
            if (remembered := self._resolved.get(key)) and remembered[0].name == name:
                self._resolved.pop(key, None)
        revoked, bound, more = 0, None, True
        while more:
            batch = await self.store.change(
                self.store.transitions.revoke_tokens(name, bound, REVOKE_BATCH)
            )
            revoked, bound, more = revoked + batch.revoked, batch.bound, batch.more
        await asyncio.sleep(TOKEN_CACHE_SECONDS)  # what other processes remember has lapsed
        return revoked

    def close(self) -> None:
        self.checks.close()


def _until(_key: object, remembered: tuple[User, float], _now: float) -> float:
    return remembered[1]


def main() -> None:
    """Print the argon2 hash of a password read from stdin (or asked for)."""
    password = sys.stdin.readline().rstrip("\n") if not sys.stdin.isatty() else getpass.getpass()
    print(HASHER.hash(password))


if __name__ == "__main__":
    main()
