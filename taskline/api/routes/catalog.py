"""The catalogue of task types."""

from fastapi import APIRouter

from taskline.api.schemas import TaskType
from taskline.core.catalog import CATALOG

router = APIRouter(tags=["catalogue"])


@router.get("/task-types", response_model=list[TaskType])
async def read_task_types() -> list[TaskType]:
    """List the task types with their parameter schemas and time limits."""
    return [
        TaskType(
            name=t.name.value,
            description=t.description,
            params_schema=t.params.model_json_schema(),
            soft_time_limit=t.soft_time_limit,
            time_limit=t.time_limit,
        )
        for t in CATALOG.values()
    ]
