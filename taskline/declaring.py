"""How a task type is declared: its name, params model, limits, retries, reserved ranges and
searchable params.

A declaration is all the API ever loads of a task type, so it stays light: pydantic and the
standard library, never the implementation (named by its dotted path, imported only by the
worker) nor the implementation's dependencies.
"""

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

# The longest a task may pad its run with `delay_seconds` (a demo and test aid).
MAX_DELAY_SECONDS = 3600


class Params(BaseModel):
    """The base of every task's params model: frozen, unknown fields refused.

    `delay_seconds` pads a run so its progress can be watched; every task accepts it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    delay_seconds: float = Field(
        0, ge=0, le=MAX_DELAY_SECONDS, description="Pad the run time so progress can be watched."
    )


@dataclass(frozen=True, slots=True)
class ExclusiveRange:
    """A range of numbers a task reserves from its params, never given to two tasks.

    The task's `first` and `count` params name the range, within the ledger `ledger` (and,
    with `scope`, one ledger per value of that param, e.g. per product model). The range is
    reserved when the task is created, swapped when an edit changes it while the task has
    never run, and kept for good once it ran, so no number is ever issued twice.
    """

    ledger: str
    first: str
    count: str
    scope: str | None = None
    # Words for messages: "serial numbers 1–10 of model 0111 are taken".
    unit: str = "numbers"
    scope_label: str = ""

    def ledger_id(self, params: dict[str, Any]) -> str:
        """The ledger these params reserve in."""
        return self.ledger if self.scope is None else f"{self.ledger}:{params[self.scope]}"

    def bounds(self, params: dict[str, Any]) -> tuple[int, int]:
        """The first and last number these params reserve."""
        first = int(params[self.first])
        return first, first + int(params[self.count]) - 1

    def where(self, params: dict[str, Any]) -> str:
        """ " of model 0111" (or nothing): where the range lies, for messages."""
        if self.scope is None:
            return ""
        return f" of {self.scope_label or self.scope} {params[self.scope]}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Run a failed task again, up to `max_attempts` runs in all, after a growing wait.

    Only failures whose exception type (or one of its bases) is named in `on` are retried;
    names, not classes, so the API never imports an implementation's exceptions. The wait
    before attempt n+1 is `backoff_seconds * 2**(n-1)`, at most `backoff_cap_seconds`, with
    full jitter when `jitter` is set. While it waits the task is SCHEDULED, and the worker
    goes on with the line. A lost run (worker killed) counts as an attempt, but is put back in
    line even past `max_attempts` (it may not have failed); a failure then ends the task.
    """

    max_attempts: int = 3
    on: tuple[str, ...] = ("Exception",)
    backoff_seconds: float = 1.0
    backoff_cap_seconds: float = 300.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.backoff_seconds < 0 or self.backoff_cap_seconds < 0:
            raise ValueError("max_attempts must be >= 1 and the backoff seconds >= 0")
        if isinstance(self.on, str) or not all(isinstance(n, str) and n for n in self.on):
            raise ValueError("`on` names exception types in a tuple, e.g. ('TimeoutError',)")


@dataclass(frozen=True, slots=True)
class TaskDeclaration:
    """One task type, as the API and the worker both know it."""

    name: str
    params: type[Params]
    # "package.module:function", imported by the worker only.
    implementation: str
    description: str = ""
    # The JSON schema of the result, when it is known (shown by GET /task-types).
    result_schema: dict[str, Any] | None = None
    # Seconds of work beyond `delay_seconds`: the soft limit raises an exception the task
    # may catch (SoftTimeLimitExceeded), the hard one kills the run (FAILURE, saying so).
    soft_time_limit: int = 300
    time_limit: int = 330
    retry: RetryPolicy | None = None
    exclusive_range: ExclusiveRange | None = None
    # A param whose size drives the run time (e.g. "digits"): run times are kept and
    # estimated per size bucket of it too (core.estimates), not only per type.
    estimate_by: str | None = None
    # Params a listing may search by value (`GET /tasks?param.text=hello`): each task's
    # value of them is indexed at creation and edit (core/searchable.py).
    searchable: tuple[str, ...] = ()
    # The module that declared it (set by `declare`), named in loading errors.
    module: str = field(default="", compare=False)


_declared: list[TaskDeclaration] = []


def declare(
    name: str,
    *,
    params: type[Params],
    implementation: str,
    description: str = "",
    result_schema: dict[str, Any] | None = None,
    soft_time_limit: int = 300,
    time_limit: int = 330,
    retry: RetryPolicy | None = None,
    exclusive_range: ExclusiveRange | None = None,
    estimate_by: str | None = None,
    searchable: tuple[str, ...] = (),
) -> TaskDeclaration:
    """Declare a task type; the packages named by TASKLINE_TASK_PACKAGES call this on import."""
    caller = inspect.currentframe()
    module = caller.f_back.f_globals.get("__name__", "") if caller and caller.f_back else ""
    declaration = TaskDeclaration(
        name=name,
        params=params,
        implementation=implementation,
        description=description,
        result_schema=result_schema,
        soft_time_limit=soft_time_limit,
        time_limit=time_limit,
        retry=retry,
        exclusive_range=exclusive_range,
        estimate_by=estimate_by,
        searchable=searchable,
        module=module,
    )
    _declared.append(declaration)
    return declaration


def declared_in(package: str) -> list[TaskDeclaration]:
    """Every declaration made so far by `package` or one of its modules."""
    return [d for d in _declared if d.module == package or d.module.startswith(package + ".")]


Implementation = TypeVar("Implementation", bound=Callable[..., Any])

# The attribute `implements` marks an implementation with (the name it implements).
IMPLEMENTS = "__taskline_implements__"


def implements(declaration: TaskDeclaration) -> Callable[[Implementation], Implementation]:
    """Mark a function `(context, params) -> JSON` as the implementation of a declaration."""

    def mark(function: Implementation) -> Implementation:
        setattr(function, IMPLEMENTS, declaration.name)
        _implemented.append((declaration.name, f"{function.__module__}:{function.__qualname__}"))
        return function

    return mark


# Every (task name, "module:function") marked by `implements` in this process.
_implemented: list[tuple[str, str]] = []


def implemented() -> list[tuple[str, str]]:
    return list(_implemented)
