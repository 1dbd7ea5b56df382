"""`/metrics` of two API processes sharing one multiprocess directory, and a real worker: what
either process accepted and answered, and what the worker ended, adds up in either's scrape,
by task type, outcome and route template."""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.client import read, submit, wait_done
from tests.processes import Stack
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

FAR_AWAY = "2100-01-01T00:00:00Z"
# Samples by (name, sorted labels).
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A worker, the scheduler (retries) and two API processes, their counters in one
    directory of the test's."""
    logs = tmp_path_factory.mktemp("metrics")
    shared = logs / "prometheus"
    with Stack(logs, PROMETHEUS_MULTIPROC_DIR=str(shared)) as stack:
        stack.start("worker", "scheduler", "api", "replica")
        yield stack


def scrape(api: httpx.Client) -> Samples:
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_counters_add_up_across_api_processes_and_the_worker(stack: Stack) -> None:
    with stack.client() as a, stack.client(url=stack.replica_url) as b:
        before = scrape(a)
        ran = [submit(api, "reverse", {"text": f"m{i}"}) for i, api in enumerate((a, a, b))]
        failing = submit(b, "word_report", {"text": "the cat sat", "fail_attempts": 3})
        waiting = submit(a, "reverse", {"text": "never"}, not_before=FAR_AWAY)
        assert b.post(f"/tasks/{waiting['id']}/cancel").status_code == 200
        for task in ran:
            assert wait_done(a, task["id"])["state"] == "SUCCESS"
        assert wait_done(b, failing["id"], timeout=90)["state"] == "FAILURE"
        for task in ran:
            read(b, task["id"])  # plain reads: the hot path, on the second process

        success = {"type": "reverse", "outcome": "SUCCESS"}
        counted = value(before, "taskline_tasks_ended_total", **success) + 3
        posts = {"method": "POST", "route": "/tasks", "status": "202"}
        posted = value(before, "taskline_http_requests_total", **posts) + 5

        def ended() -> Samples | None:
            """The scrape once the worker's count of the last end is in (it follows the end)
            and the other process wrote its requests (within a second, api.metrics)."""
            now = scrape(b)
            done = value(now, "taskline_tasks_ended_total", **success) >= counted
            return (
                now
                if done and value(now, "taskline_http_requests_total", **posts) >= posted
                else None
            )

        after = wait_until(ended, 30, what="the worker's ends counted")

    def grew(name: str, by: float, **labels: str) -> None:
        assert value(after, name, **labels) - value(before, name, **labels) == by, (name, labels)

    # submissions on both processes add up, by type
    grew("taskline_tasks_submitted_total", 4, type="reverse")
    grew("taskline_tasks_submitted_total", 1, type="word_report")
    # ends by type and outcome: the worker's and the API's cancel of a waiting task
    grew("taskline_tasks_ended_total", 3, type="reverse", outcome="SUCCESS")
    grew("taskline_tasks_ended_total", 1, type="word_report", outcome="FAILURE")
    grew("taskline_tasks_ended_total", 1, type="reverse", outcome="CANCELLED")
    # wait and run times of the runs (a cancelled waiting task never ran)
    grew("taskline_task_wait_seconds_count", 3, type="reverse")
    grew("taskline_task_run_seconds_count", 3, type="reverse")
    grew("taskline_task_run_seconds_bucket", 3, type="reverse", le="+Inf")
    assert value(after, "taskline_task_run_seconds_sum", type="reverse") > 0
    # HTTP requests of both processes by route template, never a raw id
    grew("taskline_http_requests_total", 5, method="POST", route="/tasks", status="202")
    grew("taskline_http_requests_total", 1, method="POST", route="/tasks/{task_id}/cancel",
         status="200")  # fmt: skip
    reads = value(after, "taskline_http_requests_total", method="GET", route="/tasks/{task_id}",
                  status="200")  # fmt: skip
    assert reads >= 3
    assert (
        value(
            after,
            "taskline_http_request_duration_seconds_count",
            method="GET",
            route="/tasks/{task_id}",
        )
        >= reads
    )
    routes = {dict(labels).get("route", "") for (_, labels) in after}
    assert not any(task["id"] in route for task in (*ran, failing, waiting) for route in routes)
    # live gauges: depth and postponed tasks of the line, the worker
    assert ("taskline_queue_depth", (("line", "default"),)) in after
    assert ("taskline_scheduled", (("line", "default"),)) in after
    assert value(after, "taskline_workers") == 1
    assert sum(v for (name, _), v in after.items() if name == "taskline_worker_up") == 1


def test_the_metrics_need_an_admin_on_every_process(stack: Stack) -> None:
    for url in (stack.url, stack.replica_url):
        with httpx.Client(base_url=url) as anonymous, stack.client("alice", url=url) as alice:
            assert anonymous.get("/metrics").status_code == 401
            assert alice.get("/metrics").status_code == 403


def test_the_counters_live_in_the_shared_directory(stack: Stack) -> None:
    shared = Path(stack.env["PROMETHEUS_MULTIPROC_DIR"])
    assert any(shared.glob("counter_*.db")) and any(shared.glob("histogram_*.db"))
