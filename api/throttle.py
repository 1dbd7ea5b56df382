"""Failed sign-ins counted per user name and per client address, and the lockouts they earn.

Guessing passwords must cost the guesser, not the service: past a small budget of failures
(per name, and per address) every password check of that name or from that address is refused
with 429 and Retry-After before argon2 runs, for a lockout that doubles each time it is earned
again. The counts live in Redis (core/lua/signin.lua), so every API process shares them and
two racing attempts are counted in order. A name that signed in from an address before is
spared that address's lockout (a shared address does not lock out its known users); its own
budget still holds. Bearer tokens are never throttled: they prove no password.

A remembered good password (HTTP Basic on every request) is checked against the lockouts too;
a process trusts a "not locked" answer for CLEAR_SECONDS, and forgets every such answer as
soon as it counts a failure itself. So a lockout earned through this process applies at once,
one earned through another within CLEAR_SECONDS (as a revoked token does).
"""

import math

from cachetools import TTLCache

from api.errors import TooManyRequestsError
from api.store import TaskStore
from core.settings import Settings
from core.transitions import SigninBudget

CLEAR_SECONDS = 1.0


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
        )
        self._known_ms = round(settings.signin_known_seconds * 1000)
        # (name, address) pairs Redis said were not locked out, lately.
        self._clear: TTLCache[tuple[str, str], bool] = TTLCache(10_000, CLEAR_SECONDS)

    async def check(self, name: str, address: str) -> None:
        """Refuse (429) if the name or the address is locked out; count nothing."""
        if (name, address) in self._clear:
            return
        wait_ms = await self.store.change(self.store.transitions.signin(name, address, None))
        _refuse_for(wait_ms)
        self._clear[name, address] = True

    async def begin(self, name: str, address: str) -> None:
        """Refuse (429) if locked out, else count this attempt as failed until it succeeds."""
        self._clear.clear()  # a failure may lock out any name or address it touches
        attempt = self.store.transitions.signin(name, address, self.budget)
        _refuse_for(await self.store.change(attempt))

    async def succeeded(self, name: str, address: str) -> None:
        """The password was right: clear the name's failures, remember it at this address."""
        await self.store.change(self.store.transitions.signed_in(name, address, self._known_ms))


def _refuse_for(wait_ms: int) -> None:
    if wait_ms > 0:
        seconds = max(1, math.ceil(wait_ms / 1000))
        raise TooManyRequestsError(
            f"too many failed sign-ins: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
