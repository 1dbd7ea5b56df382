"""The task types this deployment runs (TASKLINE_TASK_PACKAGES), with their schemas."""

from fastapi import APIRouter

from taskline.api.deps import SettingsDep
from taskline.api.schemas import TaskType
from taskline.core.registry import limits, tasks_of

router = APIRouter(tags=["catalogue"])


@router.get("/task-types", response_model=list[TaskType])
async def read_task_types(settings: SettingsDep) -> list[TaskType]:
    """List the task types with their parameter schemas, time limits and retry policy."""
    return [
        TaskType(
            name=t.name,
            description=t.description,
            params_schema=t.params.model_json_schema(),
            result_schema=t.result_schema,
            soft_time_limit=limits(t)[0],
            time_limit=limits(t)[1],
            max_attempts=t.retry.max_attempts if t.retry else 1,
            reserves=t.exclusive_range.ledger if t.exclusive_range else None,
        )
        for t in tasks_of(settings).values()
    ]
