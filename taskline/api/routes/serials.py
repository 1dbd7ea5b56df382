"""Checking serial numbers.

A check tells whether a checksum is right: an oracle, so it is throttled per user and per
client address (a fixed window of a minute, counted in Redis for every API process), and a
guesser needs about half a million checks to forge one serial. It names the task that issued
a serial only to whoever may see that task, and never a deleted one.
"""

import math
from typing import Annotated

from fastapi import APIRouter, Path, Request
from pydantic import BaseModel, Field

from taskline.api.deps import CurrentUser, LedgerDep, SettingsDep, StoreDep, client_address
from taskline.api.errors import TooManyRequestsError
from taskline.api.store import redis_errors
from taskline.builtins import SERIAL_RANGE
from taskline.builtins.serials import is_genuine, parse_serial


class SerialCheck(BaseModel):
    """What Taskline knows of a serial number."""

    serial: str
    genuine: bool = Field(description="Well formed, and its checksum matches its model and number.")
    code_model: str | None = None
    number: int | None = None
    issued: bool = Field(description="Its number was handed out for its model by a task.")
    task_id: str | None = Field(None, description="The task it was issued to (if yours).")


router = APIRouter(tags=["serials"])


@router.get(
    "/serials/{serial}",
    response_model=SerialCheck,
    responses={
        401: {"description": "Not authenticated"},
        429: {"description": "Too many serial checks this minute, by this user or address"},
    },
)
async def read_serial(
    serial: Annotated[str, Path(max_length=64)],
    request: Request,
    ledger: LedgerDep,
    store: StoreDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> SerialCheck:
    """Say whether a serial is genuine (its HMAC checksum) and whether it was issued."""
    per_minute = settings.serial_checks_per_minute
    check = store.transitions.serial_check(user.name, client_address(request), per_minute)
    if wait_ms := await store.change(check):
        seconds = max(1, math.ceil(wait_ms / 1000))
        raise TooManyRequestsError(
            f"more than {per_minute} serial checks a minute: try again in {seconds} s",
            headers={"Retry-After": str(seconds)},
        )
    parsed = parse_serial(serial)
    secret = settings.serial_secret.get_secret_value().encode()
    if parsed is None or not is_genuine(secret, serial):
        return SerialCheck(serial=serial, genuine=False, issued=False)
    with redis_errors():
        within = SERIAL_RANGE.ledger_id({"code_model": parsed.code_model})
        allocation = await ledger.find(within, parsed.number)
    task_id = None
    if allocation:
        snapshot = await store.read(allocation.task_id)
        if snapshot is not None and user.sees(snapshot.record.owner):
            task_id = allocation.task_id
    return SerialCheck(
        serial=serial,
        genuine=True,
        code_model=parsed.code_model,
        number=parsed.number,
        issued=allocation is not None,
        task_id=task_id,
    )
