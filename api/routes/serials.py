"""Checking serial numbers."""

from typing import Annotated

from fastapi import APIRouter, Path

from api.deps import CurrentUser, LedgerDep, SettingsDep, StoreDep
from api.schemas import SerialCheck
from api.store import redis_errors
from core.serials import is_genuine, parse_serial

router = APIRouter(tags=["serials"])


@router.get(
    "/serials/{serial}",
    response_model=SerialCheck,
    responses={401: {"description": "Not authenticated"}},
)
async def read_serial(
    serial: Annotated[str, Path(max_length=64)],
    ledger: LedgerDep,
    store: StoreDep,
    settings: SettingsDep,
    user: CurrentUser,
) -> SerialCheck:
    """Say whether a serial is genuine (its HMAC checksum) and whether it was issued."""
    parsed = parse_serial(serial)
    secret = settings.serial_secret.get_secret_value().encode()
    if parsed is None or not is_genuine(secret, serial):
        return SerialCheck(serial=serial, genuine=False, issued=False)
    with redis_errors():
        allocation = await ledger.find(parsed.code_model, parsed.number)
    task_id = None
    if allocation:
        snapshot = await store.read(allocation.task_id)
        if snapshot is None or user.sees(snapshot.record.owner):
            task_id = allocation.task_id
    return SerialCheck(
        serial=serial,
        genuine=True,
        code_model=parsed.code_model,
        number=parsed.number,
        issued=allocation is not None,
        task_id=task_id,
    )
