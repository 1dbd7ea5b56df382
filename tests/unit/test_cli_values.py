"""The command line's own logic, without a server: params, moments, exit codes, API details,
and the stored login's file mode."""

import os
import stat
from datetime import datetime
from pathlib import Path

import pytest

from taskline.cli import config
from taskline.cli.answers import PAGE, TASK, problem
from taskline.cli.connection import describe
from taskline.cli.exits import CliError, ExitCode, for_state
from taskline.cli.params import parse_moment, parse_params


def test_param_values_are_json_when_they_parse_else_text() -> None:
    params = parse_params(
        ["digits=7", "text=hello", "flag=true", "ratio=0.5", "list=[1, 2]", 'quoted="7"', "e="]
    )
    assert params == {
        "digits": 7,
        "text": "hello",
        "flag": True,
        "ratio": 0.5,
        "list": [1, 2],
        "quoted": "7",
        "e": "",
    }
    assert parse_params(["text=a=b"]) == {"text": "a=b"}  # only the first `=` splits


@pytest.mark.parametrize("pairs", [["digits"], ["=7"], ["digits=1", "digits=2"]])
def test_bad_param_syntax_is_a_usage_error(pairs: list[str]) -> None:
    with pytest.raises(CliError) as caught:
        parse_params(pairs)
    assert caught.value.code == ExitCode.USAGE == 2


def test_moments_carry_an_offset_and_a_naive_one_is_local_time() -> None:
    assert parse_moment("2026-11-23T19:00:00Z", "--until") == "2026-11-23T19:00:00+00:00"
    local = datetime.fromisoformat(parse_moment("2026-11-23T19:00", "--until"))
    assert local.utcoffset() is not None
    assert local.replace(tzinfo=None) == datetime(2026, 11, 23, 19, 0)
    with pytest.raises(CliError) as caught:
        parse_moment("tomorrow", "--until")
    assert caught.value.code == ExitCode.USAGE and "--until" in caught.value.message


def test_a_final_state_maps_to_its_own_exit_code() -> None:
    assert for_state("SUCCESS") == 0
    assert for_state("FAILURE") == ExitCode.FAILURE
    assert for_state("CANCELLED") == ExitCode.CANCELLED
    assert for_state("PROGRESS") == for_state("QUEUED") == ExitCode.UNFINISHED
    codes = [ExitCode.OK, ExitCode.USAGE, ExitCode.HTTP, ExitCode.FAILURE, ExitCode.CANCELLED]
    assert len(set(codes)) == len(codes) and ExitCode.USAGE == 2


def test_api_details_read_as_one_line() -> None:
    assert describe("task x not found") == "task x not found"
    refused = [
        {"loc": ["body", "params", "digits"], "msg": "Input should be greater than 0"},
        {"loc": ["query", "limit"], "msg": "too big"},
    ]
    assert describe(refused) == "params.digits: Input should be greater than 0; limit: too big"
    kept = {"message": "confirm never came", "task_id": "t1"}
    assert describe(kept) == "confirm never came (task t1)"
    failed = {"message": "task t ended in FAILURE", "error": {"type": "E", "message": "bad"}}
    assert describe(failed) == "task t ended in FAILURE: E: bad"
    assert describe({"other": 1}) == '{"other": 1}'


def test_a_stored_login_is_readable_by_its_owner_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    old = os.umask(0)  # the most permissive umask must not widen the file
    try:
        path = config.save(config.StoredLogin("http://127.0.0.1:1", "secret", "alice"))
    finally:
        os.umask(old)
    assert path == tmp_path / "cfg" / "taskline" / "token"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert config.load() == config.StoredLogin("http://127.0.0.1:1", "secret", "alice")
    assert config.forget() and config.load() is None and not config.forget()


def test_any_detail_shape_reads_as_one_line() -> None:
    assert describe([{"msg": "x", "loc": 5}]) == "5: x"
    assert describe([{"msg": None, "loc": [None, {"a": 1}]}]) == "None.{'a': 1}: None"
    assert describe([{"msg": "m"}]) == "m" and describe([]) == "[]"
    assert describe(None) == "null" and describe({"message": ["m"], "error": "e"}) == "['m']"


def test_answers_of_the_wrong_shape_are_told_where() -> None:
    good = {"id": "t", "state": "QUEUED", "progress": None, "priority": 5}
    assert problem(good, TASK) is None
    assert problem([1, 2], TASK) == "the answer is not an object"
    assert problem({"state": "QUEUED"}, TASK) == "the answer has no 'id'"
    assert problem({**good, "progress": {"percent": "x"}}, TASK) == (
        "progress.percent is not a number"
    )
    assert problem({**good, "priority": 10**400}, TASK) == "priority is not a number or null"
    assert problem({"items": [good, {"id": 1}]}, PAGE) == "items[1] has no 'state'"
    assert problem({"items": [good], "next_cursor": 5}, PAGE) == (
        "next_cursor is not a string or null"
    )
