"""The listing's filter as one model: what `GET /tasks` narrows by, and what a bulk action
(api.routes.bulk) names as `filter`; a new field is added here and mapped in `page` alone."""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from taskline.api.store import Search, TaskStore
from taskline.core.lines import LINE_PATTERN
from taskline.core.records import Snapshot, State

NAME_PATTERN = r"^[A-Za-z0-9_]+$"


class TaskFilter(BaseModel):
    """Tasks by state, and by type (`name`) or line: each field narrows, none matches all."""

    model_config = ConfigDict(extra="forbid")

    state: State | None = None
    name: Annotated[str | None, Field(max_length=100, pattern=NAME_PATTERN)] = None
    line: Annotated[str | None, Field(max_length=32, pattern=LINE_PATTERN)] = None

    @model_validator(mode="after")
    def _name_or_line(self) -> "TaskFilter":
        if self.name and self.line:
            raise ValueError("filter by name or by line, not both: a task type is on one line")
        return self

    async def page(
        self, store: TaskStore, owner: str | None, limit: int, cursor: int | None
    ) -> tuple[list[Snapshot], int | None]:
        """The matching tasks of `owner` (None: everyone's), newest first, at most `limit`
        below `cursor`; and the cursor of the next page, if any."""
        # PROGRESS is how a STARTED task with progress reads; both are "running" in the index.
        state = State.STARTED if self.state is State.PROGRESS else self.state
        search = Search(
            states=(state.value,) if state else (),
            names=(self.name,) if self.name else (),
            owner=owner,
            line=self.line,
        )
        return await store.page(search, limit, cursor)
