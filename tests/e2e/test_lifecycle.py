"""A task's life through the real API, RabbitMQ, worker and Redis."""

import json
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from mpmath import mp

from taskline.core.records import Keys
from taskline.worker.celery_app import create_celery_app
from tests.client import TERMINAL, blocker, ran_in_order, read, submit, wait_done
from tests.processes import PASSWORDS, Stack, api_command, free_port, start, stop, wait_for_api
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def pi_truncated(digits: int) -> str:
    mp.dps = digits + 20
    text = mp.nstr(mp.pi, digits + 10, strip_zeros=False)
    return text[: digits + 2]


def test_leibniz_goes_queued_started_progress_success(api: httpx.Client) -> None:
    created = submit(api, "leibniz_pi", {"digits": 7}, delay_seconds=2)
    assert created["state"] == "QUEUED"
    assert created["queued_at"].endswith("Z")
    seen: list[dict] = []

    def finished() -> bool:
        task = api.get(f"/tasks/{created['id']}").json()
        seen.append(task)
        return task["state"] in TERMINAL

    wait_until(finished, 60, interval=0.03)
    states = [t["state"] for t in seen]
    order = ["QUEUED", "STARTED", "PROGRESS", "SUCCESS"]
    ranks = [order.index(s) for s in states]
    assert ranks == sorted(ranks), states
    percents = [t["progress"]["percent"] for t in seen if t["state"] == "PROGRESS"]
    assert len(set(percents)) >= 3, percents
    assert percents == sorted(percents)
    assert all(
        t["progress"]["intermediate"].startswith("3.1") for t in seen if t["state"] == "PROGRESS"
    )
    final = seen[-1]
    assert final["state"] == "SUCCESS"
    assert final["result"]["pi"] == pi_truncated(7)
    assert final["started_at"] and final["finished_at"] and final["attempts"] == 1
    assert final["started_at"] >= final["queued_at"]
    assert final["finished_at"] >= final["started_at"]


def test_result_can_be_read_again_and_again(api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "noël 👍🏽"})
    wait_done(api, task["id"])
    first = api.get(f"/tasks/{task['id']}/result")
    second = api.get(f"/tasks/{task['id']}/result")
    assert first.status_code == second.status_code == 200
    assert first.json() == second.json()
    assert first.json()["result"] == "👍🏽 lëon"


def test_result_of_unfinished_task_is_202(api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "slow"}, delay_seconds=1.5)
    response = api.get(f"/tasks/{task['id']}/result")
    assert response.status_code == 202
    assert response.json()["state"] in {"QUEUED", "STARTED", "PROGRESS"}
    wait_done(api, task["id"])


def test_tasks_run_one_at_a_time_in_submission_order(api: httpx.Client) -> None:
    ids = [submit(api, "reverse", {"text": f"t{i}"}, delay_seconds=0.3)["id"] for i in range(5)]
    ran_in_order(api, ids)


def test_unknown_id_is_404(api: httpx.Client) -> None:
    response = api.get("/tasks/does-not-exist")
    assert response.status_code == 404
    assert "not found" in response.json()["detail"]
    assert api.get("/tasks/does-not-exist/result").status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        {"name": "leibniz_pi", "params": {"digits": 0}},
        {"name": "leibniz_pi", "params": {"digits": 11}},
        {"name": "leibniz_pi", "params": {"digits": "many"}},
        {"name": "leibniz_pi", "params": {}},
        {"name": "reverse", "params": {"text": "x", "colour": "red"}},
        {"name": "reverse", "params": {"text": "x"}, "delay_seconds": 3601},
        {"name": "generate_serials", "params": {"code_model": "01", "number": 999_999, "count": 2}},
        {"name": "no_such_task", "params": {}},
        {"name": "reverse", "params": {"text": "x"}, "priority": 10},
    ],
)
def test_invalid_params_are_422_and_create_nothing(
    api: httpx.Client, stack: Stack, body: dict
) -> None:
    before = stack.redis.zcard(stack.key("index:all"))
    response = api.post("/tasks", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["detail"]
    assert stack.redis.zcard(stack.key("index:all")) == before


def test_bad_message_sent_by_name_ends_in_failure(api: httpx.Client, stack: Stack) -> None:
    """A message from another tool (as Flower sends) with bad params fails cleanly."""
    app = create_celery_app(stack.settings, with_backend=False)
    task_id = app.send_task("leibniz_pi", kwargs={"digits": -3}).id
    app.close()
    # The worker adopts a message sent by name into a record when it takes it.
    wait_until(lambda: api.get(f"/tasks/{task_id}").status_code == 200, 30)
    task = wait_done(api, task_id)
    assert task["state"] == "FAILURE"
    assert task["error"]["type"] == "ValidationError"
    assert "digits" in task["error"]["message"]
    assert task["finished_at"]
    result = api.get(f"/tasks/{task_id}/result")
    assert result.status_code == 409
    assert result.json()["detail"]["state"] == "FAILURE"


def test_task_types_describe_the_catalogue(api: httpx.Client) -> None:
    types = {t["name"]: t for t in api.get("/task-types").json()}
    assert set(types) == {"leibniz_pi", "reverse", "generate_serials", "word_report", "guarded"}
    assert types["leibniz_pi"]["params_schema"]["properties"]["digits"]["maximum"] == 10_000


def test_host_stats_answer_with_real_values(api: httpx.Client) -> None:
    cpu = api.get("/cpu/percent").json()
    assert len(cpu["per_core"]) >= 1 and 0 <= cpu["total"] <= 100
    times = api.get("/cpu/times_percent").json()
    assert len(times) == len(cpu["per_core"]) and "idle" in times[0]
    assert sum(times[0].values()) > 50  # shares of a real interval add up to ~100
    parts = api.get("/partitions/usage").json()
    assert any(p["mountpoint"] == "/" and p["total"] > 0 for p in parts)
    memory = api.get("/memory").json()
    assert memory["virtual"]["total"] > 0
    host = api.get("/").json()
    assert host["cpu_count"] >= 1


def test_a_browser_asking_for_the_root_is_sent_to_the_dashboard(api: httpx.Client) -> None:
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    answer = api.get("/", headers={"Accept": browser})
    assert answer.status_code == 303 and answer.headers["location"] == "/ui"
    # curl and HTTP libraries (*/*) and JSON clients keep the host statistics
    for accept in ("*/*", "application/json", "application/json, text/html"):
        assert api.get("/", headers={"Accept": accept}).json()["cpu_count"] >= 1


def test_broker_unreachable_gives_503_fast_and_no_record(stack: Stack, tmp_path: Path) -> None:
    closed = free_port()
    env = {**stack.env, "TASKLINE_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{closed}//"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    index = stack.key("index:all")
    proc = start(api_command(port), env, tmp_path / "api.log")
    try:
        wait_for_api(url)
        before = stack.redis.zcard(index)
        started = time.monotonic()
        response = httpx.post(
            f"{url}/tasks",
            json={"name": "reverse", "params": {"text": "x"}},
            auth=("admin", PASSWORDS["admin"]),
            timeout=30,
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 503, response.text
        assert "RabbitMQ" in response.json()["detail"]
        assert elapsed < 10, f"503 took {elapsed:.1f} s"
        assert stack.redis.zcard(index) == before
        ready = httpx.get(f"{url}/ready", timeout=30)
        assert ready.status_code == 503 and ready.json()["broker"] is False
    finally:
        stop(proc)


def test_pickle_messages_are_refused_and_the_worker_carries_on(
    api: httpx.Client, stack: Stack
) -> None:
    """JSON only: a pickled message never runs (and never creates a record)."""
    app = create_celery_app(stack.settings, with_backend=False)
    app.conf.task_serializer = "pickle"
    task_id = app.send_task("reverse", kwargs={"text": "pickled"}).id
    app.close()
    after = submit(api, "reverse", {"text": "json"})
    assert wait_done(api, after["id"])["result"] == "nosj"
    assert api.get(f"/tasks/{task_id}").status_code == 404
    log = (stack.logs / "worker.log").read_text()
    assert "ContentDisallowed" in log or "pickle" in log


def test_progress_is_reported_by_long_runs_only(api: httpx.Client, stack: Stack) -> None:
    """A run that ends within one progress interval writes no progress (its SUCCESS follows
    at once); a longer one reports on the way and ends at 100 %."""
    quick = submit(api, "reverse", {"text": "quick"})
    slow = submit(api, "reverse", {"text": "slow"}, delay_seconds=1)
    wait_done(api, slow["id"])
    keys = Keys(stack.settings.key_prefix)

    def states(task_id: str) -> list[str]:
        return [fields["state"] for _, fields in stack.redis.xrange(keys.events(task_id))]

    assert states(quick["id"]) == ["QUEUED", "STARTED", "SUCCESS"]
    slow_states = states(slow["id"])
    assert slow_states.count("PROGRESS") >= 3, slow_states
    assert slow_states[-1] == "SUCCESS"
    last = [f for _, f in stack.redis.xrange(keys.events(slow["id"])) if "progress" in f][-1]
    assert json.loads(last["progress"])["percent"] == 100.0


def test_confirmed_turns_leave_the_outbox_while_they_wait(api: httpx.Client, stack: Stack) -> None:
    """The API takes a confirmed turn off the outbox (in batches, shortly after the 202), so
    the scheduler never publishes it again; tasks waiting behind a running one show it."""
    keys = Keys(stack.settings.key_prefix)
    busy = blocker(api, 3.0)
    waiting = [submit(api, "reverse", {"text": f"behind {i}"})["id"] for i in range(5)]
    wait_until(lambda: stack.redis.zmscore(keys.outbox, waiting) == [None] * 5, 2)
    assert all(read(api, task_id)["state"] == "QUEUED" for task_id in waiting)
    assert read(api, busy["id"])["state"] in {"STARTED", "PROGRESS"}
    for task_id in waiting:
        wait_done(api, task_id)


def test_a_padded_run_reports_progress_that_rises_with_the_delay(api: httpx.Client) -> None:
    """The seeds' demo: a short computation padded to two seconds can be watched by polling:
    its percent rises on the way, it says which worker runs it and when its lease was last
    renewed, and it ends at 100 %."""
    task = submit(api, "leibniz_pi", {"digits": 3}, delay_seconds=2)
    seen: list[dict] = []

    def ended() -> bool:
        seen.append(read(api, task["id"]))
        return seen[-1]["state"] in TERMINAL

    wait_until(ended, 30, interval=0.1)
    running = [t for t in seen if t["state"] == "PROGRESS"]
    percents = [t["progress"]["percent"] for t in running]
    assert len(set(percents)) >= 5, percents
    assert percents == sorted(percents) and 0 < percents[0] < 50
    assert all(t["progress"]["intermediate"].startswith("3.1") for t in running)
    assert all(t["worker"] and t["lease_renewed_at"] for t in running)
    assert seen[-1]["state"] == "SUCCESS" and seen[-1]["worker"] is None


def test_turns_lost_from_the_queue_are_published_again_in_order_and_run_once(
    make_stack: Callable[..., Stack],
) -> None:
    """A purged queue loses the turns of waiting tasks; the scheduler finds them missing
    (two looks, one second apart here) and reissues the line from the first lost one, so
    they run before a task submitted after the loss, in order, each once."""
    stack = make_stack(TASKLINE_RECONCILE_SECONDS="1")
    stack.start()
    with stack.client() as api:
        busy = blocker(api, 60)
        lost = [submit(api, "reverse", {"text": f"lost {i}"})["id"] for i in range(3)]
        app = create_celery_app(stack.settings, with_backend=False)
        with app.connection_for_write() as connection:
            assert connection.default_channel.queue_purge(stack.settings.queue) == 3
        app.close()
        later = submit(api, "reverse", {"text": "later"})["id"]

        def reissued() -> bool:
            turns = [stack.redis.hget(stack.key(f"task:{t}"), "turn") for t in lost]
            return all(int(turn or 0) >= 2 for turn in turns)

        # The worker is held until the scheduler has reissued the line, however slow it is.
        wait_until(reissued, 30, 0.1, "the lost turns reissued")
        assert api.post(f"/tasks/{busy['id']}/cancel").status_code in (200, 202)
        done = [wait_done(api, task_id, timeout=30) for task_id in [*lost, later]]
    assert [t["state"] for t in done] == ["SUCCESS"] * 4
    assert [t["attempts"] for t in done] == [1, 1, 1, 1]
    assert [t["started_at"] for t in done] == sorted(t["started_at"] for t in done)
