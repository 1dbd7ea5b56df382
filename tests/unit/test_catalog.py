"""Parameter bounds of the catalogue."""

import pytest
from pydantic import ValidationError

from taskline.builtins import LeibnizParams, SerialParams
from taskline.core.registry import limits, registry

CATALOG = registry("taskline.builtins")


def test_series_is_limited_to_ten_digits_but_accelerated_goes_further() -> None:
    assert LeibnizParams(digits=10).method == "series"
    with pytest.raises(ValidationError, match="euler-maclaurin"):
        LeibnizParams(digits=11)
    assert LeibnizParams(digits=10_000, method="euler-maclaurin").digits == 10_000
    with pytest.raises(ValidationError):
        LeibnizParams(digits=10_001, method="euler-maclaurin")


def test_delay_is_bounded() -> None:
    assert LeibnizParams(digits=3, delay_seconds=3600).delay_seconds == 3600
    with pytest.raises(ValidationError):
        LeibnizParams(digits=3, delay_seconds=-1)


def test_serial_range_must_fit_six_digits() -> None:
    assert SerialParams(code_model="0111", number=999_990, count=10).count == 10
    with pytest.raises(ValidationError, match="999999"):
        SerialParams(code_model="0111", number=999_991, count=10)
    with pytest.raises(ValidationError):
        SerialParams(code_model="01 11", number=1, count=1)


def test_unknown_params_are_refused() -> None:
    with pytest.raises(ValidationError):
        CATALOG["reverse"].params.model_validate({"text": "x", "extra": 1})


def test_time_limits_cover_the_longest_delay() -> None:
    for task_type in CATALOG.values():
        soft, hard = limits(task_type)
        assert hard > soft > 3600
    assert CATALOG.longest_time_limit == max(limits(t)[1] for t in CATALOG.values())
