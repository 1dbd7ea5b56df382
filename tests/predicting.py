"""A known workload for the predictions of GET /tasks/{id}/eta, shared by its e2e test and by
`python -m bench.suite --only predict`: how far the expected starts and ends of waiting
tasks fall from when they really started and ended (mean absolute error, seconds).

The runs' times are known: each task is padded by its `delay_seconds`, so a prediction can
only be off by what the line adds (the running task's rest, the worker's turns between runs).
Unpadded runs first give the type a run-time history (an unpadded `reverse` takes
milliseconds), as a deployment's would have.
"""

import statistics
from datetime import datetime
from typing import Any

import httpx

from tests.client import submit, wait_done, wait_state

# The padded runs of the workload, in the order they are submitted (seconds).
DELAYS = (0.6, 0.3, 0.9, 0.4, 0.7, 0.5, 0.8, 0.3)
# The run ahead of them all, running while they are predicted.
FIRST_DELAY = 1.5
# Unpadded runs that give the type its history.
WARM_UP = 5


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def measure(api: httpx.Client, delays: tuple[float, ...] = DELAYS) -> dict[str, Any]:
    """Run the workload on an idle line; the errors of the expected starts and ends, each
    task's (start_error_s, end_error_s), and their means (start_mae_s, end_mae_s)."""
    for _ in range(WARM_UP):
        wait_done(api, submit(api, "reverse", {"text": "warm"})["id"])
    first = submit(api, "reverse", {"text": "first"}, delay_seconds=FIRST_DELAY)
    wait_state(api, first["id"], {"STARTED", "PROGRESS"})
    tasks = [submit(api, "reverse", {"text": "x"}, delay_seconds=d)["id"] for d in delays]
    predicted = []
    for task_id in tasks:
        reply = api.get(f"/tasks/{task_id}/eta")
        reply.raise_for_status()
        predicted.append(reply.json())
    ended = [wait_done(api, task_id, timeout=60) for task_id in tasks]
    errors = []
    for guess, task in zip(predicted, ended, strict=True):
        assert task["state"] == "SUCCESS", task
        start = abs((moment(guess["expected_start"]) - moment(task["started_at"])).total_seconds())
        end = abs((moment(guess["expected_end"]) - moment(task["finished_at"])).total_seconds())
        errors.append((start, end))
    wait_done(api, first["id"])
    return {
        "tasks": len(tasks),
        "errors": errors,
        "start_mae_s": statistics.fmean(e[0] for e in errors),
        "end_mae_s": statistics.fmean(e[1] for e in errors),
        "predicted": predicted,
    }
