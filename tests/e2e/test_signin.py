"""Sign-in throttling: failed passwords are counted per name and per address, lockouts answer
429 before any hash runs, and password checks cannot pile up beyond their own small pool.

Whether a hash ran is read from the API's own counter (`taskline_password_checks_total` in
/metrics, read with a bearer token, which runs none), not from timings.
"""

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest

from taskline.core.records import Keys
from tests.processes import PASSWORDS, Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

READ = "/tasks"


def password_checks(stack: Stack, admin: dict[str, str]) -> int:
    """How many passwords the API process has checked (argon2) so far."""
    metrics = httpx.get(f"{stack.url}/metrics", headers=admin).text
    line = next(x for x in metrics.splitlines() if x.startswith("taskline_password_checks"))
    return int(float(line.split()[-1]))  # Prometheus text: a float, "3.0"


def assert_locked_out(response: httpx.Response) -> int:
    """The answer is a lockout: 429, a JSON detail and Retry-After (returned, in s)."""
    assert response.status_code == 429, response.text
    assert "failed sign-ins" in response.json()["detail"]
    assert int(response.headers["retry-after"]) > 0
    return int(response.headers["retry-after"])


def many_at_once(stack: Stack, auths: list[tuple[str, str]]) -> list[httpx.Response]:
    """One `GET /tasks` per credential, all sent at the same time."""

    async def send() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.url, timeout=60) as client:
            return await asyncio.gather(*(client.get(READ, auth=auth) for auth in auths))

    return asyncio.run(send())


def lock_ended(stack: Stack, name: str) -> Callable[[], bool]:
    """Whether the lockout of a user name is over (read in Redis, where the API keeps it)."""
    lock = Keys(stack.settings.key_prefix).signin(name, "127.0.0.1")[1]
    return lambda: not stack.redis.exists(lock)


def test_a_flood_of_wrong_passwords_checks_no_more_than_the_budget(
    make_stack: Callable[..., Stack],
) -> None:
    """20 wrong passwords for alice at once: exactly the budget (5) are checked, the rest are
    refused unchecked. While locked, even alice's right password is refused, though the API
    remembers it as checked (a guess must not be told it was right); bob, and bearer
    tokens, go on working."""
    stack = make_stack()
    stack.start("api")
    admin = stack.bearer()
    bob_token = stack.bearer("bob")
    right = ("alice", PASSWORDS["alice"])
    assert httpx.get(f"{stack.url}{READ}", auth=right).status_code == 200  # now remembered
    before = password_checks(stack, admin)

    answers = many_at_once(stack, [("alice", f"guess-{i}") for i in range(20)])
    statuses = Counter(r.status_code for r in answers)
    assert statuses[401] == 5, statuses
    assert set(statuses) <= {401, 429, 503}, statuses
    assert statuses[429] > 0, statuses
    for response in answers:
        if response.status_code != 401:
            assert response.json()["detail"] and int(response.headers["retry-after"]) > 0
    assert password_checks(stack, admin) == before + 5

    with httpx.Client(base_url=stack.url, timeout=10) as client:
        locked = client.get(READ, auth=("alice", "guess-again"))
        assert assert_locked_out(locked) <= stack.settings.signin_lockout_seconds
        assert_locked_out(client.get(READ, auth=right))
        signin = {"username": "alice", "password": PASSWORDS["alice"]}
        assert_locked_out(client.post("/auth/token", data=signin))
        assert password_checks(stack, admin) == before + 5  # no hash ran for any of them

        assert client.get(READ, auth=("bob", PASSWORDS["bob"])).status_code == 200
        assert client.get(READ, headers=bob_token).status_code == 200


def test_lockouts_double_and_a_success_starts_afresh(make_stack: Callable[..., Stack]) -> None:
    """Budget 2, first lockout 3 s: the next lockout lasts 6 s; a right password after it
    clears the count and the strikes, so the one after that is 3 s again."""
    stack = make_stack(TASKLINE_SIGNIN_FAILURES_PER_NAME="2", TASKLINE_SIGNIN_LOCKOUT_SECONDS="3")
    stack.start("api")
    first = stack.settings.signin_lockout_seconds
    wrong, right = ("alice", "wrong"), ("alice", PASSWORDS["alice"])
    # A connection per request: waiting for a lockout to end may outlast uvicorn's keep-alive
    # (5 s), and a request sent as it closes an idle connection meets a reset.
    fresh = httpx.Limits(max_keepalive_connections=0)
    with httpx.Client(base_url=stack.url, timeout=10, limits=fresh) as client:
        assert [client.get(READ, auth=wrong).status_code for _ in range(2)] == [401, 401]
        assert assert_locked_out(client.get(READ, auth=wrong)) <= first
        wait_until(lock_ended(stack, "alice"), 2 * first)

        assert [client.get(READ, auth=wrong).status_code for _ in range(2)] == [401, 401]
        assert assert_locked_out(client.get(READ, auth=wrong)) > first  # twice as long
        wait_until(lock_ended(stack, "alice"), 3 * first)

        assert client.get(READ, auth=right).status_code == 200
        assert [client.get(READ, auth=wrong).status_code for _ in range(2)] == [401, 401]
        assert assert_locked_out(client.get(READ, auth=wrong)) <= first


def test_one_address_is_locked_out_across_names_but_spares_names_known_there(
    make_stack: Callable[..., Stack],
) -> None:
    """Wrong passwords for many names (one each: no name's own budget is reached) from one
    address lock that address out; a user who signed in from it before is spared."""
    stack = make_stack(TASKLINE_SIGNIN_FAILURES_PER_ADDRESS="6")
    stack.start("api")
    admin = stack.bearer()  # admin is now known at 127.0.0.1
    before = password_checks(stack, admin)
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        statuses = [client.get(READ, auth=(f"nobody{i}", "guess")).status_code for i in range(10)]
        assert statuses == [401] * 6 + [429] * 4
        assert password_checks(stack, admin) == before + 6

        assert_locked_out(client.get(READ, auth=("bob", PASSWORDS["bob"])))
        signin = {"username": "alice", "password": PASSWORDS["alice"]}
        assert_locked_out(client.post("/auth/token", data=signin))
        assert client.get(READ, auth=("admin", PASSWORDS["admin"])).status_code == 200
        assert client.get(READ, auth=("admin", "wrong")).status_code == 401  # checked, counted
        assert password_checks(stack, admin) == before + 7
        assert client.get(READ, headers=admin).status_code == 200


def test_password_checks_beyond_their_pool_are_refused_at_once(
    make_stack: Callable[..., Stack],
) -> None:
    """One checking thread and one waiting place: of 12 simultaneous attempts, the ones that
    find no place are answered 503 with Retry-After, and no hash runs for them."""
    stack = make_stack(
        TASKLINE_SIGNIN_HASH_THREADS="1",
        TASKLINE_SIGNIN_HASH_WAITING="1",
        TASKLINE_SIGNIN_FAILURES_PER_NAME="1000",
        TASKLINE_SIGNIN_FAILURES_PER_ADDRESS="1000",
    )
    stack.start("api")
    admin = stack.bearer()
    before = password_checks(stack, admin)

    answers = many_at_once(stack, [(f"nobody{i}", "guess") for i in range(12)])
    statuses = Counter(r.status_code for r in answers)
    assert set(statuses) == {401, 503}, statuses
    for response in answers:
        if response.status_code == 503:
            assert "password checks" in response.json()["detail"]
            assert int(response.headers["retry-after"]) > 0
    assert password_checks(stack, admin) == before + statuses[401]
    with httpx.Client(base_url=stack.url, timeout=10) as client:  # the pool is free again
        assert client.get(READ, auth=("bob", PASSWORDS["bob"])).status_code == 200


def test_concurrent_sign_ins_with_the_right_password_all_succeed(
    make_stack: Callable[..., Stack],
) -> None:
    """Ten at once with the right password, twice the name's budget: a right password never
    counts as a failure, however many are being checked together, for tokens and for Basic."""
    stack = make_stack(TASKLINE_SIGNIN_FAILURES_PER_NAME="5")
    stack.start("api")
    signin = {"username": "alice", "password": PASSWORDS["alice"]}

    async def tokens() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=stack.url, timeout=60) as client:
            return await asyncio.gather(
                *(client.post("/auth/token", data=signin) for _ in range(10))
            )

    answers = asyncio.run(tokens())
    assert [r.status_code for r in answers] == [200] * 10, [r.text for r in answers]
    basic = many_at_once(stack, [("bob", PASSWORDS["bob"])] * 10)
    assert [r.status_code for r in basic] == [200] * 10, [r.text for r in basic]


def test_x_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(
    make_stack: Callable[..., Stack],
) -> None:
    """By default a loopback client cannot name another address: one that sends a new
    X-Forwarded-For with each wrong password is locked out after the address's budget."""
    stack = make_stack(TASKLINE_SIGNIN_FAILURES_PER_ADDRESS="3")
    stack.start("api")
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        statuses = [
            client.get(
                READ, auth=(f"nobody{i}", "guess"), headers={"X-Forwarded-For": f"192.0.2.{i}"}
            ).status_code
            for i in range(6)
        ]
    assert statuses == [401] * 3 + [429] * 3


def test_behind_a_trusted_proxy_each_client_and_each_ipv6_64_has_its_own_budget(
    make_stack: Callable[..., Stack],
) -> None:
    """The configured proxy names the client (the last address it appended); IPv6 clients
    are counted by /64, which one subscriber holds whole."""
    stack = make_stack(
        TASKLINE_SIGNIN_FAILURES_PER_ADDRESS="3", TASKLINE_TRUSTED_PROXIES="127.0.0.1,::1"
    )
    stack.start("api")

    def attempt(i: int, forwarded: str) -> int:
        headers = {"X-Forwarded-For": forwarded}
        return client.get(READ, auth=(f"nobody{i}", "guess"), headers=headers).status_code

    with httpx.Client(base_url=stack.url, timeout=10) as client:
        assert [attempt(i, f"192.0.2.{i}") for i in range(6)] == [401] * 6
        # A client's own X-Forwarded-For, forwarded by the proxy, does not name it.
        assert [attempt(i, f"198.51.100.{i}, 192.0.2.77") for i in range(4)] == [401] * 3 + [429]
        one_64 = [attempt(i, f"2001:db8:0:7::{i + 1:x}") for i in range(4)]
        assert one_64 == [401] * 3 + [429]
        assert attempt(9, "2001:db8:0:8::1") == 401  # the next /64
