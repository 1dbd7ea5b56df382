"""Accounts: a token's role is the configured one, an admin revokes all of a user's tokens,
a viewer reads every task and changes nothing, and the API does not start with a user name
that could reach into other keys, or a role it does not know."""

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from taskline.core.records import now_ms
from tests.client import read, submit, token, wait_done
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


def refused_start(stack: Stack, users_named: str) -> str:
    """The log of an API started with these TASKLINE_USERS, which must exit non-zero."""
    env = {**stack.env, "TASKLINE_USERS": users_named}
    log = stack.logs / "api.log"
    proc = start(api_command(free_port()), env, log)
    try:
        wait_until(lambda: proc.poll() is not None, 30, interval=0.1)
    finally:
        stop(proc)
    assert proc.returncode != 0
    return log.read_text()


def test_the_api_refuses_to_start_with_user_names_outside_the_safe_set(
    make_stack: Callable[..., Stack],
) -> None:
    """A name with `:` could make one user's keys another's; the API names every bad one."""
    stack = make_stack()
    entries = json.loads(users_setting())
    bad = ["ev:il", "two words", "x" * 65, ""]
    entries |= dict.fromkeys(bad, entries["bob"])
    log = refused_start(stack, json.dumps(entries))
    refusal = next(line for line in log.splitlines() if "are not allowed" in line)
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


# Writes a viewer may send: each concerns the viewer's own session, nothing of anyone's tasks.
VIEWER_WRITES = {
    ("POST", "/auth/token"): "signing in: how a viewer gets a bearer token at all",
    ("DELETE", "/auth/token"): "signing out: revokes the token the request carries, its own",
}
# Reads a viewer is refused: (method, path) → why.
VIEWER_REFUSED_READS = {
    ("GET", "/leibnic/{digits}"): "the seed's deprecated GET creates a task",
    ("GET", "/metrics"): "admins only, as for users: how busy and big the service is",
}
# Reads not sent here: (method, path) → why.
VIEWER_UNSENT_READS = {
    ("GET", "/events"): "endless; its snapshot is read below instead",
}
# Bodies a writer's request could carry: a viewer is refused all the same.
BODIES: dict[tuple[str, str], dict] = {
    ("POST", "/tasks"): {"name": "reverse", "params": {"text": "viewer's"}},
    ("PATCH", "/tasks/{task_id}"): {"priority": 9},
    ("POST", "/tasks/{task_id}/clone"): {},
    ("POST", "/generate_sn"): {"code_model": "VW", "number": 1, "count": 1},
    ("POST", "/api/tasks"): {"name": "reverse", "qwargs": {"text": "viewer's"}},
}


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def operations(document: dict) -> list[tuple[str, str]]:
    """Every (METHOD, path) of an OpenAPI document."""
    methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
    return [
        (method.upper(), path)
        for path, item in document["paths"].items()
        for method in item
        if method in methods
    ]


def test_a_viewer_reads_every_task_and_changes_nothing(stack: Stack, api: httpx.Client) -> None:
    with stack.client("alice") as alice, stack.client("carol") as carol:
        done = wait_done(alice, submit(alice, "reverse", {"text": "alice's"})["id"])
        held = submit(alice, "reverse", {"text": "held"}, not_before=later(3600))
        before = read(alice, held["id"])
        values = {"task_id": held["id"], "digits": "3", "name": "alice", "page": "0"}
        values["serial"] = "000000VW000001"

        def concrete(path: str) -> str:
            names = re.findall(r"{(\w+)}", path)
            assert set(names) <= values.keys(), f"give {path}'s parameters a value here"
            return path.format(**values)

        found = operations(carol.get("/openapi.json").json())
        writes = [op for op in found if op[0] != "GET"]
        assert set(VIEWER_WRITES) <= set(writes) and len(writes) > len(VIEWER_WRITES)
        for method, path in writes:
            if (method, path) in VIEWER_WRITES:
                continue
            body = BODIES.get((method, path))
            refused = carol.request(method, concrete(path), json=body)
            assert refused.status_code == 403, (method, path, refused.text)
            assert "viewer" in refused.json()["detail"], (method, path)
        for method, path in VIEWER_REFUSED_READS:
            refused = carol.request(method, concrete(path))
            assert refused.status_code == 403 and refused.json()["detail"], (method, path)

        # Nothing changed: alice's waiting task is as it was, and no task is carol's.
        after = alice.get(f"/tasks/{held['id']}")
        assert after.json() == before and after.headers["etag"] == '"v1"'
        assert not [
            t
            for t in api.get("/tasks", params={"limit": 500}).json()["items"]
            if t["owner"] == "carol"
        ]

        # Every other read answers, alice's tasks included, as an admin's would (of her
        # finished task: the stream of a waiting one would not end).
        values["task_id"] = done["id"]
        for method, path in found:
            if method != "GET" or (method, path) in VIEWER_REFUSED_READS | VIEWER_UNSENT_READS:
                continue
            answer = carol.get(concrete(path))
            assert answer.status_code != 403 and answer.status_code < 500, (path, answer.text)
        for path in (
            f"/tasks/{done['id']}",
            f"/tasks/{done['id']}/result",
            f"/tasks/{done['id']}/history",
            f"/tasks/{held['id']}",
        ):
            assert carol.get(path).json() == api.get(path).json(), path
        listed = {t["id"] for t in carol.get("/tasks", params={"limit": 500}).json()["items"]}
        assert {done["id"], held["id"]} <= listed
        assert carol.get(f"/tasks/{done['id']}/events").status_code == 200
        with carol.stream("GET", "/events") as events:
            data = next(line for line in events.iter_lines() if line.startswith("data:"))
        assert held["id"] in {t["id"] for t in json.loads(data[5:])["postponed"]}
        assert carol.get("/auth/me").json() == {"name": "carol", "role": "viewer"}

    # Its own session: a viewer signs in and out.
    with httpx.Client(base_url=stack.url, timeout=10) as anonymous:
        bearer = {"Authorization": f"Bearer {token(anonymous, 'carol')}"}
        assert anonymous.get(f"/tasks/{held['id']}", headers=bearer).status_code == 200
        assert anonymous.delete("/auth/token", headers=bearer).status_code == 204
        assert anonymous.get("/tasks", headers=bearer).status_code == 401


def test_the_api_refuses_to_start_with_a_role_it_does_not_know(
    make_stack: Callable[..., Stack],
) -> None:
    """Naming the user, the role and the roles there are."""
    stack = make_stack()
    log = refused_start(stack, users(carol="reader"))
    refusal = "user 'carol' has role 'reader': a role is one of 'admin', 'viewer', 'user'"
    assert refusal in log
