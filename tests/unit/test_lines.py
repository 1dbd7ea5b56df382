"""TASKLINE_LINES: every task type on one line, read at start or refused with the fix."""

import pytest
from pydantic import ValidationError

from taskline.core.registry import loaded
from taskline.core.settings import Settings, lines_of


def test_no_setting_is_one_line_on_the_queue_of_before() -> None:
    lines = lines_of(Settings(queue="q"))
    assert [(line.name, line.queue, line.main) for line in lines] == [("default", "q", True)]
    assert lines.of("leibniz_pi") is lines.main
    assert lines.named("") is lines.main  # a record made before lines


def test_each_task_type_goes_to_its_line_and_the_rest_to_the_star_line() -> None:
    lines = lines_of(Settings(queue="q", lines=" slow = leibniz_pi , generate_serials ; main=*"))
    assert [(line.name, line.queue, line.main) for line in lines] == [
        ("slow", "q.slow", False),
        ("main", "q", True),
    ]
    assert lines.of("leibniz_pi").name == lines.of("generate_serials").name == "slow"
    assert lines.of("reverse") is lines.main
    assert lines.by_queue("q.slow") is lines.named("slow")


@pytest.mark.parametrize(
    ("setting", "said"),
    [
        ("slow=leibniz_pi", "no line takes '\\*'"),
        ("a=*;b=*", "lines 'a' and 'b' both take"),
        ("a=reverse;b=reverse,*", "task type 'reverse' is on two lines, 'a' and 'b'"),
        ("Slow=*", "'Slow' is not a line name"),
        ("a b=*", "'a b' is not a line name"),
        ("a=*;a=reverse", "line 'a' is given twice"),
        ("a=*;b=", "line 'b' names no task type"),
        ("slow:leibniz_pi;a=*", "has no '='"),
    ],
)
def test_a_setting_that_cannot_be_read_is_refused_saying_why(setting: str, said: str) -> None:
    with pytest.raises(ValidationError, match=f"TASKLINE_LINES: .*{said}"):
        Settings(lines=setting)


def test_a_worker_line_must_be_one_of_the_lines() -> None:
    assert Settings(lines="slow=leibniz_pi;default=*", worker_line="slow").worker_line == "slow"
    with pytest.raises(ValidationError, match="TASKLINE_WORKER_LINE: 'fast' is none of"):
        Settings(lines="slow=leibniz_pi;default=*", worker_line="fast")


def test_a_process_refuses_to_start_on_a_task_type_no_package_declares() -> None:
    settings = Settings(lines="slow=leibniz_pie;default=*")
    with pytest.raises(SystemExit, match="line 'slow' names task type 'leibniz_pie', which no"):
        loaded(settings)
    assert "leibniz_pi" in loaded(Settings(lines="slow=leibniz_pi;default=*"))
