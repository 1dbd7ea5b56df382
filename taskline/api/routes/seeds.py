"""The routes of the projects Taskline grew from, answering as their READMEs show.

Each creates an ordinary task, visible and controllable through every other endpoint.
"""

from typing import Any

from fastapi import APIRouter, Path, status
from pydantic import BaseModel, ConfigDict, Field

from taskline.api.deps import CurrentUser, SubmitterDep
from taskline.api.routes.tasks import CREATE_RESPONSES
from taskline.api.schemas import TaskId
from taskline.builtins import GENERATE_SERIALS, LEIBNIZ_PI, MAX_SERIES_DIGITS
from taskline.declaring import MAX_DELAY_SECONDS


class SeedTask(BaseModel):
    """Seed 1's body: a task name, its arguments and a delay."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"name": "reverse", "qwargs": {"text": "hello"}, "delay_seconds": 10}]
        }
    )

    name: str = Field(max_length=100, description="A task type of GET /task-types.")
    qwargs: dict[str, Any] = Field(default_factory=dict)
    delay_seconds: float = Field(0, ge=0, le=MAX_DELAY_SECONDS)


class SerialRequest(BaseModel):
    """Seed 4's body."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"code_model": "0111", "number": 1, "count": 10}]}
    )

    code_model: str
    number: int
    count: int


router = APIRouter(tags=["seed routes"])

_DIGITS = Path(ge=1, le=10_000, description="Decimals of pi.")


async def _leibnic(digits: int, submitter: SubmitterDep, user: CurrentUser) -> TaskId:
    # More digits than the plain series can certify: use the accelerated method, never clamp.
    method = "series" if digits <= MAX_SERIES_DIGITS else "euler-maclaurin"
    snapshot = await submitter.submit(LEIBNIZ_PI.name, {"digits": digits, "method": method}, user)
    return TaskId(id=snapshot.record.id)


@router.post(
    "/leibnic/{digits}",
    response_model=TaskId,
    status_code=status.HTTP_202_ACCEPTED,
    responses=CREATE_RESPONSES,
)
async def create_leibnic(
    submitter: SubmitterDep, user: CurrentUser, digits: int = _DIGITS
) -> TaskId:
    """Compute pi to `digits` decimals (seed 2's route); answers the task id."""
    return await _leibnic(digits, submitter, user)


@router.get(
    "/leibnic/{digits}",
    response_model=TaskId,
    status_code=status.HTTP_202_ACCEPTED,
    responses=CREATE_RESPONSES,
    deprecated=True,
)
async def create_leibnic_by_get(
    submitter: SubmitterDep, user: CurrentUser, digits: int = _DIGITS
) -> TaskId:
    """Compute pi to `digits` decimals; kept for seed 2's clients, use POST instead."""
    return await _leibnic(digits, submitter, user)


@router.post(
    "/generate_sn",
    response_model=TaskId,
    status_code=status.HTTP_202_ACCEPTED,
    responses=CREATE_RESPONSES,
)
async def create_serials(body: SerialRequest, submitter: SubmitterDep, user: CurrentUser) -> TaskId:
    """Generate `count` serial numbers from `number` for a model (seed 4's route)."""
    snapshot = await submitter.submit(GENERATE_SERIALS.name, body.model_dump(), user)
    return TaskId(id=snapshot.record.id)


@router.post(
    "/api/tasks",
    response_model=TaskId,
    status_code=status.HTTP_202_ACCEPTED,
    responses=CREATE_RESPONSES,
)
async def create_seed_task(body: SeedTask, submitter: SubmitterDep, user: CurrentUser) -> TaskId:
    """Run a task by name with `qwargs` and `delay_seconds` (seed 1's route)."""
    snapshot = await submitter.submit(
        body.name, {**body.qwargs, "delay_seconds": body.delay_seconds}, user
    )
    return TaskId(id=snapshot.record.id)
