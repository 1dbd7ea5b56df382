"""The task types this deployment runs (TASKLINE_TASK_PACKAGES), with their schemas."""

from functools import lru_cache
from typing import Any

from fastapi import APIRouter, FastAPI

from taskline.api.deps import SettingsDep
from taskline.api.schemas import TaskType
from taskline.core.registry import Registry, limits, registry

router = APIRouter(tags=["catalogue"])


@router.get("/task-types", response_model=list[TaskType])
async def read_task_types(settings: SettingsDep) -> list[TaskType]:
    """List the task types with their parameter schemas, time limits and retry policy."""
    return described(settings.task_packages, settings.task_path)


@lru_cache
def described(packages: str, path: str) -> list[TaskType]:
    """The task types as GET /task-types shows them: the loaded types never change while a
    process runs, so their schemas are made once, not on every request."""
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
        for t in registry(packages, path).values()
    ]


def document_examples(app: FastAPI, tasks: Registry) -> None:
    """Give the OpenAPI document's TaskCreate one example per loaded task type, taken from
    its params model's own examples, so /docs shows the types this deployment runs."""
    made = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = made()
            examples = [
                {"name": t.name, "params": example}
                for t in tasks.values()
                for example in t.params.model_json_schema().get("examples", [])[:1]
            ]
            schema["components"]["schemas"]["TaskCreate"]["examples"] = examples
        return app.openapi_schema or made()

    app.openapi = openapi  # type: ignore[method-assign]
