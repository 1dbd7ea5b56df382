"""Password checks (argon2: 64 MiB and tens of ms each) on threads of their own.

A flood of sign-ins must not take the threads, memory or CPU other requests need: checks run
on a small pool apart from the shared one, at a lower scheduling priority (argon2 computes on
four threads per check, which would otherwise starve the event loop on a small machine), a
few more may wait for the pool, and beyond that a check is refused at once (503 with
Retry-After) instead of queueing behind the flood.
"""

import asyncio
import contextlib
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from taskline.api.errors import UnavailableError

HASHER = PasswordHasher()
# Seconds a client refused for want of a free check is told to wait.
BUSY_RETRY_SECONDS = 1
# Niceness of the checking threads (and of argon2's own, which inherit it on Linux): under
# load the event loop, at 0, gets several times their share of the CPU.
NICENESS = 10


class PasswordChecks:
    """argon2 verifies on `threads` threads, with at most `waiting` more in line."""

    def __init__(self, threads: int, waiting: int) -> None:
        self._pool = ThreadPoolExecutor(
            threads, thread_name_prefix="password-check", initializer=_lower_priority
        )
        self._limit = threads + waiting
        self._pending = 0  # checks running or waiting (only the event loop changes it)
        self.run = 0  # checks run by this process: /metrics shows it

    @property
    def full(self) -> bool:
        """Whether a check asked now would be refused."""
        return self._pending >= self._limit

    async def verify(self, stored: str, password: str, gate: Callable[[], Awaitable[None]]) -> bool:
        """Whether `password` matches the argon2 hash `stored`. Refused (503) at once when no
        place is left; `gate` runs once a place is held, and may refuse too. The place is held
        until the thread is done, even if the request goes away meanwhile."""
        if self.full:
            raise UnavailableError(
                "too many password checks at once: retry shortly, or use a bearer token",
                headers={"Retry-After": str(BUSY_RETRY_SECONDS)},
            )
        self._pending += 1
        try:
            await gate()
        except BaseException:
            self._pending -= 1
            raise
        self.run += 1
        loop = asyncio.get_running_loop()
        future = self._pool.submit(_matches, stored, password)
        future.add_done_callback(lambda _: _call_soon(loop, self._done))
        return await asyncio.wrap_future(future)

    def _done(self) -> None:
        self._pending -= 1

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _lower_priority() -> None:
    """Lower this thread's priority (Linux: per thread; elsewhere a no-op if refused)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)


def _matches(stored: str, password: str) -> bool:
    try:
        return HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def _call_soon(loop: asyncio.AbstractEventLoop, callback: Callable[[], None]) -> None:
    with contextlib.suppress(RuntimeError):  # the loop closed while the thread hashed
        loop.call_soon_threadsafe(callback)
