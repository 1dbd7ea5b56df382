"""Failed sign-ins counted per user name and per client address, and the lockouts they earn.

Guessing passwords must cost the guesser, not the service: past a small budget of failures
(per name, and per address) every password check of that name or from that address is refused
with 429 and Retry-After before argon2 runs, for a lockout that doubles each time it is earned
again. The counts live in Redis (core/lua/signin.lua), so every API process shares them and
two racing attempts are counted in order. A name that signed in from an address before is
spared that address's lockout (a shared address does not lock out its known users); its own
budget still holds. Bearer tokens are never throttled: they prove no password.
"""

import math

from api.errors import TooManyRequestsError
from api.store import TaskStore
from core.settings import Settings
from core.transitions import SigninBudget


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

    async def check(self, name: str, address: str) -> None:
        """Refuse (429) if the name or the address is locked out; count nothing."""
        _refuse_for(await self.store.change(self.store.transitions.signin(name, address, None)))

    async def begin(self, name: str, address: str) -> None:
        """Refuse (429) if locked out, else count this attempt as failed until it succeeds."""
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
