"""Accounts: a token's role is the configured one, an admin revokes all of a user's tokens,
and the API does not start with a user name that could reach into other keys."""

import json
from collections.abc import Callable

import httpx
import pytest

from taskline.core.records import now_ms
from tests.processes import PASSWORDS, Stack, api_command, free_port, start, stop, users_setting
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def users(**roles: str | None) -> str:
    """The test users, with roles changed (None: the user removed)."""
    found = json.loads(users_setting())
    for name, role in roles.items():
        if role is None:
            del found[name]
        else:
            found[name]["role"] = role
    return json.dumps(found)


def test_a_tokens_role_is_read_from_the_users_setting(make_stack: Callable[..., Stack]) -> None:
    """alice's token, issued while she was an admin, acts as a user's once she is demoted,
    and stops working once she is removed."""
    stack = make_stack(TASKLINE_USERS=users(alice="admin"))
    stack.start("api")
    alice = stack.bearer("alice")
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        created = client.post(
            "/tasks",
            json={"name": "reverse", "params": {"text": "bob's"}},
            auth=("bob", PASSWORDS["bob"]),
        )
        assert created.status_code == 202, created.text
        bobs = f"/tasks/{created.json()['id']}"
        assert client.get(bobs, headers=alice).status_code == 200
        assert client.get("/metrics", headers=alice).status_code == 200

        stack.env["TASKLINE_USERS"] = users(alice="user")
        stack.restart("api")
        assert client.get(bobs, headers=alice).status_code == 404
        demoted = client.get("/metrics", headers=alice)
        assert demoted.status_code == 403 and demoted.json()["detail"]
        assert client.get("/tasks", headers=alice).json()["items"] == []

        stack.env["TASKLINE_USERS"] = users(alice=None)
        stack.restart("api")
        removed = client.get("/tasks", headers=alice)
        assert removed.status_code == 401 and removed.json()["detail"]


def test_an_admin_revokes_every_token_of_a_user(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()
    stack.start("api")
    alices = [stack.bearer("alice") for _ in range(3)]
    bob, admin = stack.bearer("bob"), stack.bearer("admin")
    revoke = "/auth/users/alice/tokens"
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        assert all(client.get("/tasks", headers=h).status_code == 200 for h in alices)
        anonymous = client.delete(revoke)
        assert anonymous.status_code == 401 and anonymous.json()["detail"]
        for headers in (bob, alices[0]):
            refused = client.delete(revoke, headers=headers)
            assert refused.status_code == 403 and refused.json()["detail"]
        bad = client.delete("/auth/users/al:ice/tokens", headers=admin)
        assert bad.status_code == 422 and bad.json()["detail"]

        assert client.delete(revoke, headers=admin).status_code == 204
        for headers in alices:
            gone = client.get("/tasks", headers=headers)
            assert gone.status_code == 401 and gone.json()["detail"]
        assert client.get("/tasks", headers=bob).status_code == 200
        assert client.get("/tasks", auth=("alice", PASSWORDS["alice"])).status_code == 200
        assert client.get("/tasks", headers=stack.bearer("alice")).status_code == 200


def test_the_api_refuses_to_start_with_user_names_outside_the_safe_set(
    make_stack: Callable[..., Stack],
) -> None:
    """A name with `:` could make one user's keys another's; the API names every bad one."""
    stack = make_stack()
    entries = json.loads(users_setting())
    bad = ["ev:il", "two words", "x" * 65, ""]
    entries |= dict.fromkeys(bad, entries["bob"])
    env = {**stack.env, "TASKLINE_USERS": json.dumps(entries)}
    log = stack.logs / "api.log"
    proc = start(api_command(free_port()), env, log)
    try:
        wait_until(lambda: proc.poll() is not None, 30, interval=0.1)
    finally:
        stop(proc)
    assert proc.returncode != 0
    refusal = next(line for line in log.read_text().splitlines() if "are not allowed" in line)
    assert all(repr(name) in refusal for name in bad), refusal
    assert "'bob'" not in refusal


def test_a_user_holds_a_bounded_number_of_tokens_the_oldest_revoked_first(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(TASKLINE_MAX_TOKENS_PER_USER="3")
    stack.start("api")
    alices = [stack.bearer("alice") for _ in range(5)]
    bob = stack.bearer("bob")
    with httpx.Client(base_url=stack.url, timeout=10) as client:
        answers = [client.get("/tasks", headers=headers).status_code for headers in alices]
        assert answers == [401, 401, 200, 200, 200]
        assert client.get("/tasks", headers=bob).status_code == 200
    assert stack.redis.zcard(stack.key("tokens:alice")) == 3


def test_revoking_many_tokens_misses_none(make_stack: Callable[..., Stack]) -> None:
    """1,201 live tokens (as a deployment without a bound could hold): all revoked, in
    batches (tests/integration/test_tokens.py), none missed."""
    stack = make_stack()
    stack.start("api")
    live = stack.bearer("alice")
    tokens = stack.key("tokens:alice")
    expiry = now_ms() + 600_000
    with stack.redis.pipeline() as pipe:
        for i in range(1200):
            key = stack.key(f"token:fake{i}")
            pipe.set(key, "alice", ex=600)
            pipe.zadd(tokens, {key: expiry + i})
        pipe.execute()
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        admin = stack.bearer("admin")
        assert client.delete("/auth/users/alice/tokens", headers=admin).status_code == 204
        assert client.get("/tasks", headers=live).status_code == 401
    assert not stack.redis.exists(tokens)
    assert not stack.redis.keys(stack.key("token:fake*"))
