"""Failed sign-ins counted per user name and per client address, and the lockouts they earn.

Guessing passwords must cost the guesser, not the service: past a small budget of failures
(per name, and per address) every password check of that name or from that address is refused
with 429 and Retry-After before argon2 runs, for a lockout that doubles each time it is earned
again. The counts live in Redis (core/lua/signin.lua), so every API process shares them and
racing attempts are counted in order. A name that signed in from an address before is spared
that address's lockout (a shared address does not lock out its known users); its own budget
still holds. Bearer tokens are never throttled: they prove no password.

Only a wrong password counts, once checked: a right one never does, however many are checked
at once. Each check holds a place in the budgets while it runs, so that failures and checks
under way never exceed a budget: at most a budget's worth of wrong passwords is checked
between two lockouts, however concurrent. An attempt that finds every place held waits (a
right password gives its place back at once), for at most WAIT_SECONDS, then is told to
retry (503).

A remembered good password (HTTP Basic on every request) is checked against the lockouts too;
a process trusts a "not locked" answer for CLEAR_SECONDS from the moment it asked. Every API
process answers alike all the same, by construction rather than by telling each other: only a
failure starts a lockout, and the request whose failure started one answers only CLEAR_SECONDS
after it did. By then every "not locked" answer asked before the lockout began, in any
process, has lapsed: once the client that earned a lockout is told 401, every process refuses
the name (or the address). Only that one answer waits; the others go at once.
"""

import asyncio
import math
import time

from cachetools import TLRUCache

from taskline.api.errors import TooManyRequestsError, UnavailableError
from taskline.api.store import TaskStore
from taskline.core.settings import Settings
from taskline.core.transitions import SigninBudget

CLEAR_SECONDS = 1.0
# How long a check holds its place in the budgets if its end is never told (a process died).
HOLD_SECONDS = 60.0
# How long an attempt waits for a place held by checks under way, and how often it asks.
WAIT_SECONDS = 30.0
POLL_SECONDS = 0.05


class SigninThrottle:
    """The gate in front of every password check."""

    def __init__(self, store: TaskStore, settings: Settings) -> None:
        self.store = store
        self.budget = SigninBudget(
            per_name=settings.signin_failures_per_name,
            per_address=settings.signin_failures_per_address,
            window_ms=round(settings.signin_window_seconds * 1000),
            lockout_ms=round(settings.signin_lockout_seconds * 1000),
            lockout_max_ms=round(settings.signin_lockout_max_seconds * 1000),
            hold_ms=round(HOLD_SECONDS * 1000),
        )
        self._known_ms = round(settings.signin_known_seconds * 1000)
        # (name, address) pairs Redis said were not locked out → until when that holds
        # (monotonic): CLEAR_SECONDS after it was asked.
        self._clear: TLRUCache[tuple[str, str], float] = TLRUCache(10_000, ttu=_until)

    async def check(self, name: str, address: str) -> None:
        """Refuse (429) if the name or the address is locked out; count nothing."""
        if (name, address) in self._clear:
            return
        asked = time.monotonic()
        _refuse_for(await self.store.change(self.store.transitions.signin(name, address)))
        if time.monotonic() < asked + CLEAR_SECONDS:
            self._clear[name, address] = asked + CLEAR_SECONDS

    async def begin(self, name: str, address: str, attempt: str) -> None:
        """Refuse (429) if locked out; else hold a place for this check, waiting for one if
        checks under way hold them all (503 if none comes free in time)."""
        transitions = self.store.transitions
        deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
        while True:
            reply = await self.store.change(
                transitions.signin_begin(name, address, attempt, self.budget)
            )
            _refuse_for(reply)
            if reply == 0:
                return
            if asyncio.get_running_loop().time() >= deadline:
                raise UnavailableError(
                    "other sign-ins of this name or from this address are being checked: "
                    "retry shortly",
                    headers={"Retry-After": "1"},
                )
            await asyncio.sleep(POLL_SECONDS)

    async def failed(self, name: str, address: str, attempt: str) -> None:
        """The password was wrong: count it. If that started a lockout, return only once no
        process trusts a "not locked" answer from before it (CLEAR_SECONDS)."""
        transitions = self.store.transitions
        started = await self.store.change(
            transitions.signin_failed(name, address, attempt, self.budget)
        )
        if started:
            await asyncio.sleep(CLEAR_SECONDS)

    async def succeeded(self, name: str, address: str, attempt: str) -> None:
        """The password was right: clear the name's failures, remember it at this address."""
        transitions = self.store.transitions
        await self.store.change(transitions.signed_in(name, address, attempt, self._known_ms))


def _until(_key: object, until: float, _now: float) -> float:
    return until


def _refuse_for(wait_ms: int) -> None:
    if wait_ms > 0:
        seconds = max(1, math.ceil(wait_ms / 1000))
        raise TooManyRequestsError(
            f"too many failed sign-ins: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
