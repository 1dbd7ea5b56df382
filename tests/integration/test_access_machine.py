"""The access scripts as a state machine: sign-in throttling, serial-check allowances, issuing
and revoking bearer tokens.

Like test_record_machine.py for the task records, Hypothesis makes the stories up and drives
the real Lua scripts on the real Redis through core.transitions, as the API processes do,
racing each other: password checks begun and ended in any order (a right one, a wrong one, a
process that never tells the end), serial checks, tokens issued while a revocation is under
way. A small model says what every call must answer; after every step the promises are read
back from Redis: no more than a budget of password checks runs between two lockouts, a right
password never counts, a user never holds more tokens than allowed, and a revocation leaves
none of the tokens held when it began.
"""

from dataclasses import dataclass, field

import pytest
import redis
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from taskline.core.records import Keys
from taskline.core.transitions import SigninBudget, Transitions
from tests.support import run_name

pytestmark = pytest.mark.integration

NAMES = ("alice", "bob")
ADDRESSES = ("10.0.0.1", "10.0.0.2")
USERS = ("alice", "bob")
MINUTE = 60_000
# Windows and lockouts far longer than a run of the machine: nothing expires by itself.
BUDGET = SigninBudget(
    per_name=3,
    per_address=5,
    window_ms=10 * MINUTE,
    lockout_ms=10 * MINUTE,
    lockout_max_ms=40 * MINUTE,
    hold_ms=10 * MINUTE,
)
KNOWN_MS = 10 * MINUTE
SERIAL_CHECKS = 3
TOKEN_MS = 10 * MINUTE
MOST_TOKENS = 3
REVOKE_BATCH = 2


@dataclass
class Budget:
    """What the model expects of one name's or one address's sign-in counters."""

    failures: int = 0
    locked: bool = False
    strikes: int = 0
    checking: set[str] = field(default_factory=set)

    def room(self, budget: int) -> bool:
        return self.failures + len(self.checking) < budget

    def fail(self, budget: int) -> bool:
        """Count a failure; whether it started a lockout."""
        self.failures += 1
        if self.failures >= budget:
            self.locked, self.failures = True, 0
            self.strikes += 1
            return True
        return False


class AccessMachine(RuleBasedStateMachine):
    """Two names, two addresses, two token holders, under a key prefix of its own."""

    def __init__(self) -> None:
        super().__init__()
        self.keys = Keys(f"{run_name('access-')}:")
        self.client = redis.Redis(decode_responses=True)
        self.transitions = Transitions(self.client, self.keys)
        self.names = {name: Budget() for name in NAMES}
        self.addresses = {address: Budget() for address in ADDRESSES}
        self.known: set[tuple[str, str]] = set()
        self.attempts: dict[str, tuple[str, str]] = {}  # checks under way: (name, address)
        self.serial_uses: dict[str, int] = {}  # per counter key
        self.tokens: dict[str, list[str]] = {user: [] for user in USERS}  # oldest first
        self.revoked: set[str] = set()
        self.issued = 0

    def teardown(self) -> None:
        for key in self.client.scan_iter(f"{self.keys.prefix}*", count=1000):
            self.client.delete(key)
        self.client.close()

    # Sign-in.

    def _locked_out(self, name: str, address: str) -> bool:
        spared = (name, address) in self.known
        return self.names[name].locked or (not spared and self.addresses[address].locked)

    @rule(name=st.sampled_from(NAMES), address=st.sampled_from(ADDRESSES))
    def check(self, name: str, address: str) -> None:
        """A remembered good password: refused while locked out, counted nowhere."""
        wait = self.transitions.signin(name, address)
        assert (wait > 0) == self._locked_out(name, address)

    @rule(name=st.sampled_from(NAMES), address=st.sampled_from(ADDRESSES))
    def begin(self, name: str, address: str) -> None:
        """A password is about to be checked: refused while locked out, told to wait while
        checks under way hold the rest of a budget, else it holds a place until it ends."""
        self.issued += 1
        attempt = f"a{self.issued}"
        wait = self.transitions.signin_begin(name, address, attempt, BUDGET)
        spared = (name, address) in self.known
        by_name, by_address = self.names[name], self.addresses[address]
        if self._locked_out(name, address):
            assert wait > 0
            return
        if not by_name.room(BUDGET.per_name) or (
            not spared and not by_address.room(BUDGET.per_address)
        ):
            assert wait == -1
            return
        assert wait == 0
        by_name.checking.add(attempt)
        if not spared:
            by_address.checking.add(attempt)
        self.attempts[attempt] = (name, address)

    @precondition(lambda self: self.attempts)
    @rule(data=st.data(), right=st.booleans())
    def end(self, data: st.DataObject, right: bool) -> None:
        """A check under way ends: a right password clears the name and makes it known at the
        address; a wrong one counts, and locks out once a budget is used up."""
        attempt = data.draw(st.sampled_from(sorted(self.attempts)))
        name, address = self.attempts.pop(attempt)
        by_name, by_address = self.names[name], self.addresses[address]
        by_name.checking.discard(attempt)
        by_address.checking.discard(attempt)
        if right:
            assert self.transitions.signed_in(name, address, attempt, KNOWN_MS) == 0
            by_name.failures, by_name.locked, by_name.strikes = 0, False, 0
            self.known.add((name, address))
            return
        started = self.transitions.signin_failed(name, address, attempt, BUDGET)
        locked = by_name.fail(BUDGET.per_name)
        if not by_address.locked:
            locked = by_address.fail(BUDGET.per_address) or locked
        assert (started > 0) == locked, (started, locked)  # told, so the API can wait it out

    def _locks(self) -> list[tuple[str, str]]:
        return [("name", n) for n, b in self.names.items() if b.locked] + [
            ("address", a) for a, b in self.addresses.items() if b.locked
        ]

    @precondition(lambda self: self._locks())
    @rule(data=st.data())
    def lockout_ends(self, data: st.DataObject) -> None:
        """A lockout runs out (its strikes are remembered: the next one lasts longer)."""
        scope, who = data.draw(st.sampled_from(self._locks()))
        lock = self.keys.signin(who, who)[1 if scope == "name" else 5]
        assert self.client.delete(lock) == 1
        (self.names if scope == "name" else self.addresses)[who].locked = False

    # Serial checks.

    @rule(user=st.sampled_from(USERS), address=st.sampled_from(ADDRESSES))
    def serial_check(self, user: str, address: str) -> None:
        """A serial check counts against its user's and its address's budgets, or, when
        either is used up, is refused and counted nowhere."""
        counters = self.keys.serial_checks(user, address)
        wait = self.transitions.serial_check(user, address, SERIAL_CHECKS)
        full = any(self.serial_uses.get(key, 0) >= SERIAL_CHECKS for key in counters)
        assert (wait > 0) == full
        if not full:
            for key in counters:
                self.serial_uses[key] = self.serial_uses.get(key, 0) + 1

    # Tokens.

    @rule(user=st.sampled_from(USERS))
    def issue_token(self, user: str) -> None:
        """A new token; beyond the most a user holds, the oldest go."""
        self.issued += 1
        key = self.keys.token(f"t{self.issued}")
        dropped = self.transitions.issue_token(user, key, TOKEN_MS, MOST_TOKENS)
        held = self.tokens[user]
        held.append(key)
        extra = max(0, len(held) - MOST_TOKENS)
        assert dropped == extra
        self.revoked.update(held[:extra])
        del held[:extra]

    @rule(user=st.sampled_from(USERS), issued_meanwhile=st.integers(0, 2))
    def revoke_all(self, user: str, issued_meanwhile: int) -> None:
        """Every token the user held when the revocation began goes, batch by batch, however
        many; tokens issued between two batches are kept."""
        held = self.tokens[user]
        before = set(held)
        bound: str | None = None
        more, first = True, True
        while more:
            batch = self.transitions.revoke_tokens(user, bound, REVOKE_BATCH)
            assert batch.revoked <= REVOKE_BATCH
            gone = held[: batch.revoked]  # the oldest go first
            assert set(gone) <= before
            del held[: batch.revoked]
            self.revoked.update(gone)
            bound, more = batch.bound, batch.more
            if first:
                first = False
                for _ in range(issued_meanwhile):
                    self.issue_token(user)
        assert not before & set(held)

    # Invariants.

    @invariant()
    def throttle_holds(self) -> None:
        """A name's wrong passwords since its last lockout or success, plus its checks under
        way, never exceed its budget; the counters in Redis are the model's."""
        for name, budget in self.names.items():
            assert budget.failures + len(budget.checking) <= BUDGET.per_name, name
        for scope, budgets in (("name", self.names), ("address", self.addresses)):
            for who, budget in budgets.items():
                failures, lock, strikes, checking = (
                    self.keys.signin(who, who)[:4]
                    if scope == "name"
                    else self.keys.signin(who, who)[4:8]
                )
                assert int(self.client.get(failures) or 0) == budget.failures, (scope, who)
                assert bool(self.client.exists(lock)) == budget.locked, (scope, who)
                assert int(self.client.get(strikes) or 0) == budget.strikes, (scope, who)
                assert set(self.client.zrange(checking, 0, -1)) == budget.checking, (scope, who)

    @invariant()
    def tokens_hold(self) -> None:
        """A user's token set holds exactly their live tokens, never more than allowed, and
        no revoked token resolves."""
        for user, held in self.tokens.items():
            assert len(held) <= MOST_TOKENS
            assert self.client.zrange(self.keys.tokens(user), 0, -1) == held, user
            assert all(self.client.get(key) == user for key in held), user
        assert not any(self.client.exists(key) for key in self.revoked)


TestAccessMachine = AccessMachine.TestCase
TestAccessMachine.settings = settings(
    max_examples=40,
    stateful_step_count=40,
    deadline=None,
    database=None,
    report_multiple_bugs=False,
)
