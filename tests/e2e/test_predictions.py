"""How long until mine runs: expected starts and ends on the real stack, and how far they fall
from the real ones on a known workload (tests/predicting.py)."""

import json
import re

import httpx
import pytest

from tests.client import submit, wait_done, wait_state
from tests.e2e.test_cli import Run, config, taskline  # noqa: F401 (fixtures)
from tests.predicting import DELAYS, measure, moment

pytestmark = pytest.mark.e2e

# The mean absolute error the expected starts and ends of the workload stay within (s). The
# workload's tasks wait 0.3 to 5.5 s: estimates that ignored their padding, or the task
# running ahead of them, would be off by seconds.
MAE_BOUND = 0.5


@pytest.mark.timeout(120)
def test_expected_starts_and_ends_fall_close_to_the_real_ones(api: httpx.Client) -> None:
    found = measure(api)
    print(
        f"\nprediction MAE over {found['tasks']} waiting tasks: start "
        f"{found['start_mae_s']:.3f} s, end {found['end_mae_s']:.3f} s"
    )
    guesses = found["predicted"]
    # each waits behind the running one and those submitted before it, in line order
    assert [g["ahead"] for g in guesses] == list(range(1, len(DELAYS) + 1))
    starts = [moment(g["expected_start"]) for g in guesses]
    assert starts == sorted(starts)
    assert found["start_mae_s"] < MAE_BOUND, found["errors"]
    assert found["end_mae_s"] < MAE_BOUND, found["errors"]


@pytest.mark.timeout(60)
def test_the_queue_lists_when_its_tasks_should_run_and_an_ended_task_has_none(
    api: httpx.Client,
) -> None:
    first = submit(api, "reverse", {"text": "a"}, delay_seconds=1.5)
    wait_state(api, first["id"], {"STARTED", "PROGRESS"})
    later = submit(api, "reverse", {"text": "b"}, delay_seconds=0.5)
    queue = api.get("/queue").json()
    expected = {e["id"]: e for e in queue["expected"]}
    assert set(expected) == {first["id"], later["id"]}
    running, waiting = expected[first["id"]], expected[later["id"]]
    assert running["expected_start"] == first_started(api, first["id"])
    # the waiting one starts as the running one ends, and runs at least its padding
    assert waiting["expected_start"] == running["expected_end"]
    length = moment(waiting["expected_end"]) - moment(waiting["expected_start"])
    assert length.total_seconds() == pytest.approx(0.5, abs=0.01)
    wait_done(api, later["id"])
    eta = api.get(f"/tasks/{later['id']}/eta").json()
    assert eta == {
        "id": later["id"],
        "state": "SUCCESS",
        "expected_start": None,
        "expected_end": None,
        "ahead": None,
        "extrapolated": False,
    }
    assert api.get("/tasks/no-such-task/eta").status_code == 404


@pytest.mark.timeout(60)
def test_a_postponed_task_is_expected_no_earlier_than_its_time(api: httpx.Client) -> None:
    task = submit(api, "reverse", {"text": "later"}, not_before="2099-01-01T00:00:00Z")
    eta = api.get(f"/tasks/{task['id']}/eta").json()
    assert eta["state"] == "SCHEDULED"
    assert eta["expected_start"] == "2099-01-01T00:00:00.000Z"
    assert api.post(f"/tasks/{task['id']}/cancel").status_code == 200


def first_started(api: httpx.Client, task_id: str) -> str:
    return str(api.get(f"/tasks/{task_id}").json()["started_at"])


@pytest.mark.timeout(90)
def test_the_command_line_shows_when_a_waiting_task_should_start_and_end(
    taskline: Run,  # noqa: F811 (the fixture)
    api: httpx.Client,
) -> None:
    first = submit(api, "reverse", {"text": "a"}, delay_seconds=3)
    wait_state(api, first["id"], {"STARTED", "PROGRESS"})
    later = submit(api, "reverse", {"text": "b"}, delay_seconds=0.5)
    shown = taskline("status", later["id"])
    assert shown.returncode == 0, shown.stderr
    assert re.search(r"expected start\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", shown.stdout)
    assert re.search(r"expected end\s+\d{4}-", shown.stdout), shown.stdout
    as_json = json.loads(taskline("status", later["id"], "--json").stdout)
    assert as_json["expected_start"] and as_json["expected_end"]
    line = taskline("queue", "--line", "default")
    assert line.returncode == 0, line.stderr
    assert re.search(rf"{later['id'][:8]}… reverse ~\d\d:\d\d:\d\d", line.stdout), line.stdout
    wait_done(api, later["id"])
    ended = json.loads(taskline("status", later["id"], "--json").stdout)
    assert "expected_start" not in ended
