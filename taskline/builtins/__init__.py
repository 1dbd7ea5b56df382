"""The built-in task types, declared through the public API like any author's.

This module is what the API loads: params models and declarations, no task code. The
implementations live in `taskline.builtins.jobs`, imported by the worker only.
"""

from typing import Literal, Self

from pydantic import ConfigDict, Field, model_validator

from taskline import MAX_DELAY_SECONDS, ExclusiveRange, Params, declare
from taskline.builtins.serials import CODE_MODEL_PATTERN
from taskline.builtins.serials import MAX_NUMBER as MAX_SERIAL_NUMBER

MAX_SERIES_DIGITS = 10
MAX_ACCELERATED_DIGITS = 10_000


class LeibnizParams(Params):
    """Parameters of `leibniz_pi`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"digits": 6}]})

    digits: int = Field(ge=1, le=MAX_ACCELERATED_DIGITS, description="Decimals of pi, truncated.")
    method: Literal["series", "euler-maclaurin"] = Field(
        "series",
        description="`series`: plain partial sums (digits ≤ 10); "
        "`euler-maclaurin`: partial sums plus the tail's Euler-number corrections.",
    )

    @model_validator(mode="after")
    def _series_is_bounded(self) -> Self:
        if self.method == "series" and self.digits > MAX_SERIES_DIGITS:
            raise ValueError(
                f"method 'series' certifies at most {MAX_SERIES_DIGITS} digits; "
                "use method 'euler-maclaurin' for more"
            )
        return self


class ReverseParams(Params):
    """Parameters of `reverse`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "hello"}]})

    text: str = Field(max_length=100_000, description="Text to reverse, grapheme by grapheme.")


class SerialParams(Params):
    """Parameters of `generate_serials`."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code_model": "0111", "number": 1, "count": 10}]}
    )

    code_model: str = Field(pattern=CODE_MODEL_PATTERN, description="Model code.")
    number: int = Field(ge=0, le=MAX_SERIAL_NUMBER, description="First serial number.")
    count: int = Field(ge=1, le=100_000, description="How many consecutive serials.")

    @model_validator(mode="after")
    def _range_fits(self) -> Self:
        if self.number + self.count - 1 > MAX_SERIAL_NUMBER:
            raise ValueError(f"number + count - 1 must not exceed {MAX_SERIAL_NUMBER}")
        return self


LEIBNIZ_PI = declare(
    "leibniz_pi",
    params=LeibnizParams,
    implementation="taskline.builtins.jobs:leibniz_pi",
    description="Compute pi to `digits` decimals by the Leibniz series, with live estimates.",
    soft_time_limit=300,
    time_limit=330,
    estimate_by="digits",
)

REVERSE = declare(
    "reverse",
    params=ReverseParams,
    implementation="taskline.builtins.jobs:reverse",
    description="Reverse a text by grapheme cluster, so accents and emoji survive.",
    result_schema={"type": "string"},
    soft_time_limit=60,
    time_limit=90,
    searchable=("text",),
)

# The serial ledger: one per model, so a serial is never issued twice (GET /serials/{serial}
# names the task a number was reserved for).
SERIAL_RANGE = ExclusiveRange(
    ledger="serials",
    scope="code_model",
    first="number",
    count="count",
    unit="serial numbers",
    scope_label="model",
)

GENERATE_SERIALS = declare(
    "generate_serials",
    params=SerialParams,
    implementation="taskline.builtins.jobs:generate_serials",
    description="Generate consecutive serial numbers with an HMAC checksum.",
    soft_time_limit=120,
    time_limit=150,
    exclusive_range=SERIAL_RANGE,
    estimate_by="count",
)

__all__ = ["GENERATE_SERIALS", "LEIBNIZ_PI", "MAX_DELAY_SECONDS", "REVERSE", "SERIAL_RANGE"]
