"""Record encoding and the task resource built from it."""

import json

from taskline.api.routes.tasks import task_response
from taskline.api.schemas import task_out as build
from taskline.core.records import Snapshot, State, TaskRecord, encode, now_iso


def record(**fields: object) -> TaskRecord:
    base = {
        "id": "t1",
        "name": "leibniz_pi",
        "params": {"digits": 3},
        "state": "STARTED",
        "priority": 5,
        "owner": "",
        "queued_at": now_iso(),
        "attempts": 1,
        "turn": 1,
        "started_at": None,
        "finished_at": None,
        "error": None,
    }
    return TaskRecord.parse(encode({**base, **fields}))


def test_encode_writes_json_for_structures_and_empty_for_none() -> None:
    out = encode({"a": {"b": 1}, "c": None, "d": 3})
    assert out == {"a": '{"b":1}', "c": "", "d": "3"}


def test_times_are_utc_with_milliseconds() -> None:
    stamp = now_iso()
    assert stamp.endswith("Z") and len(stamp.split(".")[1]) == 4


def test_a_started_task_with_progress_reads_as_progress() -> None:
    progress = {"percent": 50.0, "current": 5, "total": 10, "intermediate": "3.14"}
    assert build(Snapshot(record(), None, None)).state is State.STARTED
    task = build(Snapshot(record(progress=json.dumps(progress)), None, None))
    assert task.state is State.PROGRESS
    assert task.progress.percent == 50.0 and task.progress.intermediate == "3.14"
    assert task.links.result == "/tasks/t1/result"


def test_result_only_when_the_record_says_success() -> None:
    meta = {"status": "SUCCESS", "result": {"pi": "3.141"}}
    assert build(Snapshot(record(state="SUCCESS"), meta, None)).result == {"pi": "3.141"}
    assert build(Snapshot(record(state="CANCELLED"), meta, None)).result is None


def test_error_is_decoded() -> None:
    error = {"type": "ValueError", "message": "boom"}
    task = build(Snapshot(record(state="FAILURE", error=json.dumps(error)), None, 3))
    assert task.error.type == "ValueError" and task.state is State.FAILURE


def test_a_task_response_is_the_json_of_the_snapshot_it_is_given() -> None:
    """Requests handed one snapshot share its JSON; another snapshot, equal or not, is
    encoded anew (task_response)."""
    first = Snapshot(record(version="1"), None, 3)
    moved = Snapshot(record(version="1"), None, 2)  # the same record, a new place in line
    for snapshot in (first, first, moved, first):
        response = task_response(snapshot)
        assert response.body == build(snapshot).model_dump_json().encode()
        assert response.headers["etag"] == '"v1"'
