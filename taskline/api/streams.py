"""What every open stream (SSE, WebSocket, `?wait=` long poll) keeps to: a cap on how many a
user holds open across processes, and a fence on the credentials it was opened with.

Every open stream holds a slot: a member of the user's sorted set in Redis, scored by when
its lease ends. The API process serving the stream renews the leases of its slots every few
seconds and removes a slot as soon as its stream ends, so the set holds the user's open
streams, whichever API process serves them; the slots of a process that died lapse by
themselves within LEASE_MS, and the set's key expires with its last lease.

A slot is taken optimistically (added, then counted, in one transaction): two requests
racing for the last slot may both be refused, never both admitted. Leases are times of the
API hosts' clocks, which are assumed to agree within seconds.

A stream opened with a bearer token asks again every RECHECK_SECONDS whether the token still
holds, so that it ends within 5 s of the token's revocation or expiry (a process may remember
a token for api.auth.TOKEN_CACHE_SECONDS after it asked). A password, checked when the stream
opened, is configuration: it holds while the process runs.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

import anyio
from redis.asyncio import Redis
from redis.exceptions import RedisError

from taskline.api.auth import Authenticator, User
from taskline.api.errors import TooManyRequestsError, UnauthorizedError, UnavailableError
from taskline.api.events import wait_for
from taskline.api.store import redis_errors
from taskline.core.records import Keys, now_ms

log = logging.getLogger("taskline.streams")

LEASE_MS = 30_000
RENEW_SECONDS = 10.0
# What a refused client is told to wait: streams end with their tasks, at no known time.
RETRY_AFTER_SECONDS = 5
# How often a stream's bearer token is checked again: with a second of another process's
# token cache, a stream ends within 5 s of the token's revocation or expiry.
RECHECK_SECONDS = 3.0


class StreamSlots:
    """Admits a user's streams up to `cap` open at once, and keeps their slots alive."""

    def __init__(self, redis: Redis, keys: Keys, cap: int) -> None:
        self.redis = redis
        self.keys = keys
        self.cap = cap
        self._held: dict[str, str] = {}  # slot → the user's key
        self._renewer: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._renewer = asyncio.create_task(self._renew_forever())

    async def stop(self) -> None:
        """Stop renewing and give back the slots still held (their streams end with us)."""
        if self._renewer is not None:
            self._renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewer
        for slot, key in list(self._held.items()):
            await self._release(key, slot)

    @contextlib.asynccontextmanager
    async def hold(self, user: str) -> AsyncIterator[None]:
        """Hold one of the user's slots for the body; TooManyRequestsError if none is free."""
        key, slot = self.keys.streams(user), uuid.uuid4().hex
        now = now_ms()
        with redis_errors():
            async with self.redis.pipeline(transaction=True) as pipe:
                pipe.zremrangebyscore(key, "-inf", now)
                pipe.zadd(key, {slot: now + LEASE_MS})
                pipe.zcard(key)
                pipe.pexpire(key, LEASE_MS)
                _, _, held, _ = await pipe.execute()
        if held > self.cap:
            await self._release(key, slot)
            raise TooManyRequestsError(
                f"{user} already has {self.cap} event streams and long polls open; close one first",
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self._held[slot] = key
        try:
            yield
        finally:
            del self._held[slot]
            # Shielded: a stream cancelled by its client's departure still gives its slot back.
            with anyio.CancelScope(shield=True):
                await self._release(key, slot)

    async def _release(self, key: str, slot: str) -> None:
        try:
            await self.redis.zrem(key, slot)
        except (RedisError, OSError) as exc:
            log.warning("stream slot not given back, it lapses by itself: %s", exc)

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(RENEW_SECONDS)
            try:
                await self._renew()
            except (RedisError, OSError) as exc:
                log.warning("stream slots not renewed, retrying: %s", exc)

    async def _renew(self) -> None:
        if not self._held:
            return
        until = now_ms() + LEASE_MS
        async with self.redis.pipeline(transaction=False) as pipe:
            for slot, key in list(self._held.items()):
                # xx: a slot given back meanwhile is not taken again.
                pipe.zadd(key, {slot: until}, xx=True)
                pipe.pexpire(key, LEASE_MS)
            await pipe.execute()


class Fence:
    """The bearer token a stream was opened with (None for a password), checked again every
    RECHECK_SECONDS while the stream waits or sends: UnauthorizedError once it no longer
    holds, which ends the stream."""

    def __init__(self, authenticator: Authenticator, token: str | None, user: User) -> None:
        self.authenticator = authenticator
        self.token = token
        self.user = user
        self._due = time.monotonic() + RECHECK_SECONDS if token else float("inf")

    async def check(self) -> None:
        """UnauthorizedError if the token no longer holds; asks only once a check is due."""
        if time.monotonic() < self._due:
            return
        self._due = time.monotonic() + RECHECK_SECONDS
        try:
            holds = await self.authenticator.resolve(self.token or "") == self.user
        except UnavailableError:
            return  # Redis cannot tell now: the next check will
        if not holds:
            raise UnauthorizedError("credentials revoked or expired: sign in again")

    async def wait(self, event: asyncio.Event, seconds: float) -> bool:
        """Wait for the event up to `seconds` (True if it was set), checking meanwhile."""
        deadline = time.monotonic() + seconds
        while True:
            await self.check()
            now = time.monotonic()
            if await wait_for(event, min(deadline, self._due) - now):
                return True
            if time.monotonic() >= deadline:
                return False
