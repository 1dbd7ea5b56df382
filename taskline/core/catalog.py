"""The contract between API and worker: task names, parameter models with bounds, time limits.

Kept light on purpose (no numpy, no task code): the API imports it to validate requests and
describe the task types, the worker to validate messages, whoever sent them.
"""

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from taskline.core.serials import CODE_MODEL_PATTERN
from taskline.core.serials import MAX_NUMBER as MAX_SERIAL_NUMBER

MAX_DELAY_SECONDS = 3600
MAX_SERIES_DIGITS = 10
MAX_ACCELERATED_DIGITS = 10_000


class TaskName(StrEnum):
    """The names tasks are published under and registered with."""

    LEIBNIZ_PI = "leibniz_pi"
    REVERSE = "reverse"
    GENERATE_SERIALS = "generate_serials"


class TaskParams(BaseModel):
    """Parameters every task accepts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_seconds: float = Field(
        0, ge=0, le=MAX_DELAY_SECONDS, description="Pad the run time so progress can be watched."
    )


class LeibnizParams(TaskParams):
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


class ReverseParams(TaskParams):
    """Parameters of `reverse`."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"text": "hello"}]})

    text: str = Field(max_length=100_000, description="Text to reverse, grapheme by grapheme.")


class SerialParams(TaskParams):
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


@dataclass(frozen=True, slots=True)
class TaskType:
    """One entry of the catalogue."""

    name: TaskName
    description: str
    params: type[TaskParams]
    # Seconds of work beyond `delay_seconds`; the time limits add the requested delay.
    soft_time_limit: int
    time_limit: int
    # Takes a range of the serial ledger: reserved by the API, so it runs only with a turn.
    ledgered: bool = False


CATALOG: dict[str, TaskType] = {
    t.name.value: t
    for t in (
        TaskType(
            TaskName.LEIBNIZ_PI,
            "Compute pi to `digits` decimals by the Leibniz series, with live estimates.",
            LeibnizParams,
            soft_time_limit=MAX_DELAY_SECONDS + 300,
            time_limit=MAX_DELAY_SECONDS + 330,
        ),
        TaskType(
            TaskName.REVERSE,
            "Reverse a text by grapheme cluster, so accents and emoji survive.",
            ReverseParams,
            soft_time_limit=MAX_DELAY_SECONDS + 60,
            time_limit=MAX_DELAY_SECONDS + 90,
        ),
        TaskType(
            TaskName.GENERATE_SERIALS,
            "Generate consecutive serial numbers with an HMAC checksum.",
            SerialParams,
            soft_time_limit=MAX_DELAY_SECONDS + 120,
            time_limit=MAX_DELAY_SECONDS + 150,
            ledgered=True,
        ),
    )
}

# RabbitMQ must let a consumer hold a message longer than this (its `consumer_timeout`).
LONGEST_TIME_LIMIT = max(t.time_limit for t in CATALOG.values())
