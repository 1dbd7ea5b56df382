"""Who may do what, and the bounds every request meets."""

import asyncio
from collections.abc import Callable

import httpx
import pytest

from taskline.worker.celery_app import create_celery_app
from tests.client import submit, token, wait_done
from tests.processes import PASSWORDS, Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

REVERSE = {"name": "reverse", "params": {"text": "mine"}}


def test_anonymous_requests_to_tasks_are_401_public_routes_answer(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as anonymous:
        for method, path in [
            ("POST", "/tasks"),
            ("GET", "/tasks"),
            ("GET", "/tasks/x"),
            ("GET", "/queue"),
            ("POST", "/leibnic/3"),
            ("GET", "/tasks/x/events"),
        ]:
            response = anonymous.request(method, path, json=REVERSE)
            assert response.status_code == 401, (method, path)
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["detail"]
        for path in ["/health", "/ready", "/task-types", "/cpu/percent", "/memory", "/docs"]:
            assert anonymous.get(path).status_code == 200, path
        wrong = anonymous.get("/tasks", auth=("admin", "wrong"))
        assert wrong.status_code == 401
        bad_login = anonymous.post("/auth/token", data={"username": "admin", "password": "x"})
        assert bad_login.status_code == 401


def test_users_see_only_their_tasks_and_admin_sees_all(stack: Stack) -> None:
    with stack.client("alice") as alice, stack.client("bob") as bob, stack.client() as admin:
        mine = submit(alice, "reverse", {"text": "alice"})
        assert mine["owner"] == "alice"
        for path in (
            f"/tasks/{mine['id']}",
            f"/tasks/{mine['id']}/result",
            f"/tasks/{mine['id']}/history",
        ):
            assert bob.get(path).status_code == 404, path
        assert bob.post(f"/tasks/{mine['id']}/cancel").status_code == 404
        assert bob.patch(f"/tasks/{mine['id']}", json={"priority": 1}).status_code == 404
        assert bob.delete(f"/tasks/{mine['id']}").status_code == 404
        assert mine["id"] not in {t["id"] for t in bob.get("/tasks").json()["items"]}
        assert mine["id"] in {t["id"] for t in alice.get("/tasks").json()["items"]}
        assert admin.get(f"/tasks/{mine['id']}").status_code == 200
        assert mine["id"] in {t["id"] for t in admin.get("/tasks").json()["items"]}
        wait_done(alice, mine["id"])


def test_bearer_tokens_work_and_can_be_revoked(stack: Stack) -> None:
    with httpx.Client(base_url=stack.url) as client:
        bearer = {"Authorization": f"Bearer {token(client, 'alice')}"}
        assert client.get("/tasks", headers=bearer).status_code == 200
        assert client.delete("/auth/token", headers=bearer).status_code == 204
        assert client.get("/tasks", headers=bearer).status_code == 401
        assert client.get("/tasks", headers={"Authorization": "Bearer forged"}).status_code == 401


def test_idempotency_key_answers_the_same_task_again(api: httpx.Client, stack: Stack) -> None:
    key = {"Idempotency-Key": "retry-42"}
    first = api.post("/tasks", json=REVERSE, headers=key)
    again = api.post("/tasks", json=REVERSE, headers=key)
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    other = api.post("/tasks", json={**REVERSE, "params": {"text": "other"}}, headers=key)
    assert other.status_code == 422 and "Idempotency-Key" in other.json()["detail"]
    with stack.client("alice") as alice:  # keys belong to their user
        assert alice.post("/tasks", json=REVERSE, headers=key).json()["id"] != first.json()["id"]
    wait_done(api, first.json()["id"])


def test_oversized_body_is_413(api: httpx.Client) -> None:
    huge = {"name": "reverse", "params": {"text": "x" * 2_000_000}}
    before = api.get("/tasks", params={"limit": 1}).json()["items"]
    response = api.post("/tasks", json=huge)
    assert response.status_code == 413 and "bytes" in response.json()["detail"]
    assert api.get("/tasks", params={"limit": 1}).json()["items"] == before


def test_rate_cap_and_token_expiry(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(
        TASKLINE_CREATIONS_PER_MINUTE="4",
        TASKLINE_MAX_WAITING_PER_USER="3",
        TASKLINE_TOKEN_TTL_SECONDS="1",
    )
    stack.start("api")  # no worker: tasks stay waiting
    with stack.client("alice") as alice, stack.client("bob") as bob:
        for _ in range(3):
            assert alice.post("/tasks", json=REVERSE).status_code == 202
        capped = alice.post("/tasks", json=REVERSE)
        assert capped.status_code == 429 and "waiting" in capped.json()["detail"]
        limited = alice.post("/tasks", json=REVERSE)
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        assert bob.post("/tasks", json=REVERSE).status_code == 202  # limits are per user
        bearer = {"Authorization": f"Bearer {token(bob, 'bob')}"}
        assert bob.get("/tasks", headers=bearer, auth=None).status_code == 200
        wait_until(lambda: bob.get("/tasks", headers=bearer, auth=None).status_code == 401, 5, 0.2)


def test_plain_read_answers_exactly_as_the_full_route(stack: Stack) -> None:
    """`GET /tasks/{id}` is answered before FastAPI's routing (api.hotpaths); with a query
    string it goes through the route. Both give the same answer, errors included."""
    with (
        stack.client("alice") as alice,
        stack.client("bob") as bob,
        httpx.Client(base_url=stack.url) as anonymous,
    ):
        task = submit(alice, "reverse", {"text": "same answer"})
        wait_done(alice, task["id"])
        path = f"/tasks/{task['id']}"
        bearer = {"Authorization": f"Bearer {token(anonymous, 'alice')}"}
        cases = [
            (alice, path, {}),  # the owner, HTTP Basic
            (anonymous, path, bearer),  # the owner, bearer token
            (bob, path, {}),  # another user: unknown
            (alice, "/tasks/no-such-task", {}),
            (anonymous, path, {}),  # no credentials
            (anonymous, path, {"Authorization": "Bearer forged"}),
            (anonymous, path, {"Authorization": "Basic not-base64!"}),
        ]
        seen = []
        for client, url, headers in cases:
            plain = client.get(url, headers=headers)
            routed = client.get(url, params={"wait": 0}, headers=headers)
            seen.append(plain.status_code)
            assert plain.status_code == routed.status_code, (url, headers, plain.text)
            assert plain.json() == routed.json(), (url, headers)
            for header in ("etag", "www-authenticate", "content-type"):
                assert plain.headers.get(header) == routed.headers.get(header), header
        assert seen == [200, 200, 404, 404, 401, 401, 401]
        assert alice.get(path).json()["result"] == "rewsna emas"


def test_plain_submission_answers_exactly_as_the_full_route(stack: Stack) -> None:
    """`POST /tasks` is answered before FastAPI's routing (api.hotpaths); with a query string
    it goes through the route. Both give the same answer, errors included."""
    with stack.client() as admin, httpx.Client(base_url=stack.url) as anonymous:
        cases = [
            (admin, {"json": REVERSE}),
            (admin, {"json": {**REVERSE, "priority": 7, "delay_seconds": 0.1}}),
            (admin, {"json": {"name": "reverse", "params": {"text": 5}}}),  # catalogue 422
            (admin, {"json": {"name": "no_such_task"}}),  # body 422
            (admin, {"content": b"{not json", "headers": {"Content-Type": "application/json"}}),
            (admin, {"json": REVERSE, "headers": {"Idempotency-Key": "k" * 201}}),
            (anonymous, {"json": REVERSE}),
        ]
        seen = []
        for client, request in cases:
            plain = client.post("/tasks", **request)
            routed = client.post("/tasks", params={"via": "route"}, **request)
            seen.append(plain.status_code)
            assert plain.status_code == routed.status_code, (request, plain.text, routed.text)
            assert plain.headers.get("www-authenticate") == routed.headers.get("www-authenticate")
            if plain.status_code != 202:
                assert plain.json() == routed.json(), request
                continue
            ours, theirs = plain.json(), routed.json()
            assert plain.headers["location"] == f"/tasks/{ours['id']}"
            assert routed.headers["location"] == f"/tasks/{theirs['id']}"
            assert plain.headers["etag"] == routed.headers["etag"] == '"v1"'
            varying = {"id", "links", "queued_at", "queue_position"}
            assert {k: v for k, v in ours.items() if k not in varying} == {
                k: v for k, v in theirs.items() if k not in varying
            }
            assert ours.keys() == theirs.keys()
            wait_done(admin, ours["id"])
            wait_done(admin, theirs["id"])
        assert seen == [202, 202, 422, 422, 422, 422, 401]


def test_a_repeat_while_the_first_publish_is_unsettled_is_a_503_never_its_task(
    make_stack: Callable[..., Stack],
) -> None:
    """The first request with a key created its task and is still publishing it past the
    window a repeat waits for (stalled: RabbitMQ may yet refuse it, and the task be
    removed): the repeat answers 503, not that task; once its turn is settled, the task."""
    stack = make_stack()
    stack.start("api")  # no scheduler: nothing settles the outbox but the test
    key = {"Idempotency-Key": "unsettled"}
    with stack.client() as api:
        first = api.post("/tasks", json=REVERSE, headers=key)
        assert first.status_code == 202, first.text
        task_id = first.json()["id"]
        outbox = stack.key("outbox")
        # The confirmed turn taken off the outbox (a few ms after the 202), else that removal
        # would take off the turn put back below.
        wait_until(lambda: stack.redis.zscore(outbox, task_id) is None, 5, what="the confirm")
        # Its turn back in the outbox, attempted long ago: a publish not settled yet.
        stack.redis.zadd(outbox, {task_id: 1})
        again = api.post("/tasks", json=REVERSE, headers=key)
        assert again.status_code == 503 and "Idempotency-Key" in again.json()["detail"]
        stack.redis.zrem(outbox, task_id)
        settled = api.post("/tasks", json=REVERSE, headers=key)
        assert settled.status_code == 202 and settled.json()["id"] == task_id


def test_concurrent_retries_never_get_a_202_for_a_task_that_was_not_kept(
    make_stack: Callable[..., Stack],
) -> None:
    """RabbitMQ refuses the first publish (the queue is unbound: returned as unroutable), so
    that task and its key are removed; retries with the same key racing it must not answer
    with that task. Once RabbitMQ takes messages again, the same key creates it, once."""
    stack = make_stack()
    stack.start()
    queue = stack.settings.queue
    body = {"name": "reverse", "params": {"text": "race"}}
    headers = {"Idempotency-Key": "race-key"}
    app = create_celery_app(stack.settings, with_backend=False)
    with stack.client() as api:
        assert api.post("/tasks", json=body).status_code == 202  # the API is connected
        with app.connection_for_write() as connection:
            connection.default_channel.queue_unbind(queue, queue, queue)

        async def race() -> list[httpx.Response]:
            async with httpx.AsyncClient(
                base_url=stack.url, timeout=20, auth=("admin", PASSWORDS["admin"])
            ) as client:
                posts = [client.post("/tasks", json=body, headers=headers) for _ in range(20)]
                return await asyncio.gather(*posts)

        answers = asyncio.run(race())
        with app.connection_for_write() as connection:
            connection.default_channel.queue_bind(queue, queue, queue)
        assert {r.status_code for r in answers} <= {202, 409, 503}, [r.text for r in answers]
        assert any(r.status_code == 503 for r in answers)
        # Every 202 names one task, and it exists (the API re-binds the queue when it
        # reconnects, so later racers may create it).
        accepted = {r.json()["id"] for r in answers if r.status_code == 202}
        assert len(accepted) <= 1
        assert all(api.get(f"/tasks/{task_id}").status_code == 200 for task_id in accepted)

        def created() -> httpx.Response | None:
            answer = api.post("/tasks", json=body, headers=headers)
            return answer if answer.status_code == 202 else None

        task_id = wait_until(created, 10, interval=0.2).json()["id"]
        assert accepted <= {task_id}
        assert wait_done(api, task_id)["attempts"] == 1
        listed = api.get("/tasks", params={"limit": 500}).json()["items"]
        assert len(listed) == 2  # the first task and this one: nothing left of the race
    app.close()


def test_metrics_need_a_signed_in_admin(stack: Stack) -> None:
    """/metrics tells how big and how busy the service is: 401 without credentials, 403 for
    a user, the figures for an admin."""
    with httpx.Client(base_url=stack.url) as anonymous, stack.client("alice") as alice:
        unsigned = anonymous.get("/metrics")
        assert unsigned.status_code == 401 and unsigned.json()["detail"]
        assert unsigned.headers["www-authenticate"] == "Bearer"
        refused = alice.get("/metrics")
        assert refused.status_code == 403 and refused.json()["detail"]
    with stack.client() as admin:
        shown = admin.get("/metrics")
        assert shown.status_code == 200
        assert "taskline_tasks{" in shown.text and "taskline_password_checks_total" in shown.text
