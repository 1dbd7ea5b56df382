"""Serial numbers: generated through the worker, never issued twice, verifiable."""

from collections.abc import Callable

import httpx
import pytest

from taskline.builtins.serials import is_genuine, make_serial
from taskline.worker.celery_app import create_celery_app
from tests.client import submit, wait_done
from tests.processes import Stack, api_command, free_port, start, stop, wait_for_api
from tests.support import PASSWORDS
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def generate(api: httpx.Client, code_model: str, number: int, count: int) -> httpx.Response:
    params = {"code_model": code_model, "number": number, "count": count}
    return api.post("/tasks", json={"name": "generate_serials", "params": params})


def test_serials_are_generated_unique_and_verifiable(api: httpx.Client, stack: Stack) -> None:
    secret = stack.settings.serial_secret.get_secret_value().encode()
    task = submit(api, "generate_serials", {"code_model": "A7", "number": 100, "count": 50})
    serials = wait_done(api, task["id"])["result"]["serials"]
    assert len(serials) == len(set(serials)) == 50
    assert serials[0] == make_serial(secret, "A7", 100) and serials[-1].endswith("A7000149")
    assert all(is_genuine(secret, s) for s in serials)

    check = api.get(f"/serials/{serials[7]}").json()
    assert check == {
        "serial": serials[7],
        "genuine": True,
        "code_model": "A7",
        "number": 107,
        "issued": True,
        "task_id": task["id"],
    }
    forged = f"{(int(serials[7][:6]) + 1) % 10**6:06d}{serials[7][6:]}"
    assert api.get(f"/serials/{forged}").json()["genuine"] is False
    unissued = make_serial(secret, "A7", 999)
    assert api.get(f"/serials/{unissued}").json() | {"issued": None} == {
        "serial": unissued,
        "genuine": True,
        "code_model": "A7",
        "number": 999,
        "issued": None,
        "task_id": None,
    }
    assert api.get(f"/serials/{unissued}").json()["issued"] is False
    assert api.get("/serials/not-a-serial").json()["genuine"] is False


def test_large_generations_come_out_in_pages(api: httpx.Client, stack: Stack) -> None:
    secret = stack.settings.serial_secret.get_secret_value().encode()
    task = submit(api, "generate_serials", {"code_model": "P9", "number": 0, "count": 2500})
    result = wait_done(api, task["id"])["result"]
    assert (result["count"], result["pages"], result["page_size"]) == (2500, 3, 1000)
    pages = [api.get(f"/tasks/{task['id']}/pages/{n}").json() for n in range(3)]
    serials = [serial for page in pages for serial in page["items"]]
    assert [len(page["items"]) for page in pages] == [1000, 1000, 500]
    assert serials == [make_serial(secret, "P9", n) for n in range(2500)]
    assert serials[:1000] == result["serials"] and serials[-1] == result["last"]
    assert api.get(f"/tasks/{task['id']}/pages/3").status_code == 404
    assert api.delete(f"/tasks/{task['id']}").status_code == 204
    assert not stack.redis.exists(stack.key(f"pages:{task['id']}"))


def test_overlapping_range_is_refused_and_changes_nothing(api: httpx.Client) -> None:
    assert generate(api, "B1", 1, 10).status_code == 202
    for number, count in [(1, 10), (10, 5), (0, 2), (5, 1), (0, 100)]:
        refused = generate(api, "B1", number, count)
        assert refused.status_code == 409, (number, count)
        assert "overlap" in refused.json()["detail"]
    assert generate(api, "B1", 11, 5).status_code == 202  # right after: fine
    assert generate(api, "B2", 1, 10).status_code == 202  # another model: fine
    assert generate(api, "B1", 0, 1).status_code == 202
    listed = api.get("/tasks", params={"name": "generate_serials", "limit": 500}).json()
    ranges = [(t["params"]["code_model"], t["params"]["number"]) for t in listed["items"]]
    assert ranges.count(("B1", 1)) == 1


def test_seed_route_refuses_a_range_twice(api: httpx.Client) -> None:
    body = {"code_model": "C3", "number": 5, "count": 3}
    assert api.post("/generate_sn", json=body).status_code == 202
    assert api.post("/generate_sn", json=body).status_code == 409


def test_an_edit_cannot_take_a_range_already_issued(api: httpx.Client) -> None:
    done = submit(api, "generate_serials", {"code_model": "ED", "number": 1, "count": 5})
    first = wait_done(api, done["id"])["result"]["serials"]
    later = submit(
        api,
        "generate_serials",
        {"code_model": "ED", "number": 100, "count": 5},
        not_before="2100-01-01T00:00:00Z",
    )

    same = {"params": {"code_model": "ED", "number": 1, "count": 5}, "not_before": None}
    refused = api.patch(f"/tasks/{later['id']}", json=same)
    assert refused.status_code == 409, refused.text
    assert done["id"] in refused.json()["detail"]
    kept = api.get(f"/tasks/{later['id']}").json()
    assert kept["state"] == "SCHEDULED" and kept["params"]["number"] == 100

    # Moving it to a free range gives its old one back, and it then runs with the new one.
    free = {"params": {"code_model": "ED", "number": 200, "count": 5}, "not_before": None}
    assert api.patch(f"/tasks/{later['id']}", json=free).status_code == 200
    moved = wait_done(api, later["id"])["result"]["serials"]
    assert not set(moved) & set(first) and moved[0].endswith("ED000200")
    assert generate(api, "ED", 100, 5).status_code == 202
    assert generate(api, "ED", 202, 1).status_code == 409


def test_a_serial_message_sent_without_a_turn_fails_and_reserves_nothing(
    api: httpx.Client, stack: Stack
) -> None:
    """Flower or any AMQP client can send by name; only the API can reserve a range."""
    app = create_celery_app(stack.settings, with_backend=False)
    params = {"code_model": "NT", "number": 1, "count": 3}
    task_id = app.send_task("generate_serials", kwargs=params).id
    app.close()
    wait_until(lambda: api.get(f"/tasks/{task_id}").status_code == 200, 30)
    task = wait_done(api, task_id)
    assert task["state"] == "FAILURE" and task["error"]["type"] == "Refused"
    assert "through the API" in task["error"]["message"]
    assert generate(api, "NT", 1, 3).status_code == 202


def test_serial_checks_are_throttled_per_user_and_per_address_across_processes(
    make_stack: Callable[..., Stack],
) -> None:
    """Checking serials is an oracle for their checksum: a few checks a minute per user and
    per client address (here behind a trusted proxy, which names the address), counted in
    Redis so that a second API process adds to the same count; beyond, 429 with
    Retry-After and nothing checked."""
    stack = make_stack(TASKLINE_SERIAL_CHECKS_PER_MINUTE="5", TASKLINE_TRUSTED_PROXIES="127.0.0.1")
    stack.start("api")
    port = free_port()
    second = start(api_command(port), stack.env, stack.logs / "api-2.log")
    try:
        wait_for_api(f"http://127.0.0.1:{port}")
        secret = stack.settings.serial_secret.get_secret_value().encode()
        serial = make_serial(secret, "TH", 1)

        def check(user: str, address: str, url: str = stack.url) -> httpx.Response:
            return httpx.get(
                f"{url}/serials/{serial}",
                auth=(user, PASSWORDS[user]),
                headers={"X-Forwarded-For": address},
                timeout=10,
            )

        urls = [stack.url, f"http://127.0.0.1:{port}"] * 3
        answers = [check("alice", "192.0.2.1", url).status_code for url in urls[:5]]
        assert answers == [200] * 5
        for user, address in [("alice", "192.0.2.1"), ("alice", "192.0.2.2"), ("bob", "192.0.2.1")]:
            for url in urls[:2]:
                refused = check(user, address, url)
                assert refused.status_code == 429, (user, address, refused.text)
                assert "serial" in refused.json()["detail"]
                assert 0 < int(refused.headers["retry-after"]) <= 60
        assert check("bob", "192.0.2.3").json()["genuine"] is True
    finally:
        stop(second)


def test_a_serial_check_names_no_task_of_another_user_nor_a_deleted_one(
    stack: Stack, api: httpx.Client
) -> None:
    secret = stack.settings.serial_secret.get_secret_value().encode()
    with stack.client("alice") as alice, stack.client("bob") as bob:
        task = submit(alice, "generate_serials", {"code_model": "DL", "number": 1, "count": 3})
        serial = wait_done(alice, task["id"])["result"]["serials"][0]
        assert alice.get(f"/serials/{serial}").json()["task_id"] == task["id"]
        assert api.get(f"/serials/{serial}").json()["task_id"] == task["id"]  # an admin's
        assert bob.get(f"/serials/{serial}").json() == {
            "serial": serial,
            "genuine": True,
            "code_model": "DL",
            "number": 1,
            "issued": True,
            "task_id": None,
        }

        assert alice.delete(f"/tasks/{task['id']}").status_code == 204
        for client in (alice, bob, api):
            gone = client.get(f"/serials/{serial}").json()
            assert (gone["issued"], gone["task_id"]) == (True, None), gone
        assert is_genuine(secret, serial)


def test_a_refused_overlap_names_the_task_only_to_its_owner_or_an_admin(
    stack: Stack, api: httpx.Client
) -> None:
    with stack.client("alice") as alice, stack.client("bob") as bob:
        alices = submit(alice, "generate_serials", {"code_model": "OV", "number": 10, "count": 5})
        for client, named in [(bob, False), (alice, True), (api, True)]:
            refused = generate(client, "OV", 12, 1)
            assert refused.status_code == 409, refused.text
            detail = refused.json()["detail"]
            assert "taken" in detail and "12" in detail
            assert (alices["id"] in detail) is named, (detail, named)

        later = submit(
            bob,
            "generate_serials",
            {"code_model": "OV", "number": 100, "count": 5},
            not_before="2100-01-01T00:00:00Z",
        )
        moved = {"params": {"code_model": "OV", "number": 14, "count": 1}}
        refused = bob.patch(f"/tasks/{later['id']}", json=moved)
        assert refused.status_code == 409, refused.text
        assert "taken" in refused.json()["detail"]
        assert alices["id"] not in refused.json()["detail"]
        assert bob.delete(f"/tasks/{later['id']}").status_code == 204
