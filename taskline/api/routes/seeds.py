"""The routes of the projects Taskline grew from, answering as their READMEs show.

Each creates an ordinary task, visible and controllable through every other endpoint.
"""

from fastapi import APIRouter, Path, status

from taskline.api.deps import CurrentUser, SubmitterDep
from taskline.api.routes.tasks import CREATE_RESPONSES
from taskline.api.schemas import SeedTask, SerialRequest, TaskId
from taskline.builtins import GENERATE_SERIALS, LEIBNIZ_PI, MAX_SERIES_DIGITS

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
