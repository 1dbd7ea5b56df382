"""The task types this deployment runs: the declarations of TASKLINE_TASK_PACKAGES.

Loaded whole or not at all: a package that fails to import, declares a name twice, or whose
params model has no JSON schema stops the process at start with a `TaskPackageError` that
names the module and the fix, so a running stack never serves half a catalogue.
"""

import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache

from taskline.core.lines import LinesError
from taskline.core.settings import Settings, lines_of
from taskline.declaring import MAX_DELAY_SECONDS, Params, TaskDeclaration, declared_in

# The types of a param a listing may search by (declare(searchable=...)).
SEARCHABLE_TYPES = (str, int, bool)


class TaskPackageError(Exception):
    """A task package cannot be loaded; the message says which module and what to do."""


class Registry(Mapping[str, TaskDeclaration]):
    """The loaded declarations by name."""

    def __init__(self, declarations: Iterable[TaskDeclaration]) -> None:
        self._by_name = {d.name: d for d in declarations}

    def __getitem__(self, name: str) -> TaskDeclaration:
        return self._by_name[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    @property
    def longest_time_limit(self) -> int:
        """The longest a run holds its message: a RabbitMQ consumer_timeout above it spares
        long runs a closed channel and a redelivered copy (held by the run's lease, then
        dropped: a longer run still runs once)."""
        return max((limits(d)[1] for d in self.values()), default=0)


def limits(declaration: TaskDeclaration) -> tuple[int, int]:
    """The soft and hard time limits of a run: the declared work plus the longest delay."""
    return (
        declaration.soft_time_limit + MAX_DELAY_SECONDS,
        declaration.time_limit + MAX_DELAY_SECONDS,
    )


def load(packages: Iterable[str], path: str = "") -> Registry:
    """Import each package (looked for first in the folders of `path`) and gather its
    declarations, checking each one."""
    for folder in reversed([f for f in path.split(":") if f]):
        if os.path.abspath(folder) not in sys.path:
            sys.path.insert(0, os.path.abspath(folder))
    found: dict[str, TaskDeclaration] = {}
    for package in packages:
        try:
            importlib.import_module(package)
        except Exception as exc:
            raise TaskPackageError(
                f"task package {package!r} failed to import ({type(exc).__name__}: {exc}): "
                "fix the package or remove it from TASKLINE_TASK_PACKAGES"
            ) from exc
        declarations = declared_in(package)
        if not declarations:
            raise TaskPackageError(
                f"task package {package!r} declares no task: call taskline.declare(...) in "
                "it (or in a module it imports), or remove it from TASKLINE_TASK_PACKAGES"
            )
        for declaration in declarations:
            check(declaration)
            if declaration.name in found:
                raise TaskPackageError(
                    f"task {declaration.name!r} is declared twice: in "
                    f"{found[declaration.name].module} and in {declaration.module}; "
                    "rename one of them"
                )
            found[declaration.name] = declaration
    return Registry(found.values())


def check(declaration: TaskDeclaration) -> None:
    """A declaration the API and the worker can both use, or TaskPackageError saying why."""
    where = f"task {declaration.name!r} (declared in {declaration.module})"
    if not declaration.name or not declaration.name.replace("_", "").isalnum():
        raise TaskPackageError(f"{where}: a name is letters, digits and underscores")
    if not (isinstance(declaration.params, type) and issubclass(declaration.params, Params)):
        raise TaskPackageError(f"{where}: params must be a subclass of taskline.Params")
    module, _, function = declaration.implementation.partition(":")
    if not module or not function:
        raise TaskPackageError(
            f"{where}: implementation must be 'package.module:function', "
            f"not {declaration.implementation!r}"
        )
    if not 0 < declaration.soft_time_limit < declaration.time_limit:
        raise TaskPackageError(f"{where}: 0 < soft_time_limit < time_limit must hold")
    try:
        declaration.params.model_json_schema()
    except Exception as exc:
        raise TaskPackageError(
            f"{where}: its params model has no JSON schema ({exc}): use JSON types"
        ) from exc
    fields = declaration.params.model_fields
    if isinstance(declaration.searchable, str):
        raise TaskPackageError(f"{where}: searchable names params in a tuple, e.g. ('text',)")
    for param in declaration.searchable:
        if param not in fields or fields[param].annotation not in SEARCHABLE_TYPES:
            raise TaskPackageError(
                f"{where}: searchable param {param!r} must be a str, int or bool param"
            )
    reserved = declaration.exclusive_range
    if reserved is not None:
        for role, name in (("first", reserved.first), ("count", reserved.count)):
            if name not in fields or fields[name].annotation is not int:
                raise TaskPackageError(
                    f"{where}: its exclusive range's {role} field {name!r} must be an int param"
                )
        if reserved.scope is not None and reserved.scope not in fields:
            raise TaskPackageError(
                f"{where}: its exclusive range's scope {reserved.scope!r} is not a param"
            )
    if declaration.estimate_by is not None and (
        declaration.estimate_by not in declaration.params.model_fields
    ):
        raise TaskPackageError(
            f"{where}: estimate_by names {declaration.estimate_by!r}, which is not a param"
        )


@lru_cache
def registry(setting: str, path: str = "") -> Registry:
    """The registry of TASKLINE_TASK_PACKAGES (and TASK_PATH), loaded once per process."""
    return load(packages_of(setting), path)


def packages_of(setting: str) -> tuple[str, ...]:
    """TASKLINE_TASK_PACKAGES as package names."""
    return tuple(p.strip() for p in setting.split(",") if p.strip())


def locate_implementations(tasks: Registry) -> None:
    """Every implementation module can be found, without importing it (the API's check)."""
    for declaration in tasks.values():
        module = declaration.implementation.partition(":")[0]
        try:
            found = importlib.util.find_spec(module)
        except (ImportError, ValueError) as exc:
            found = None
            reason = f" ({type(exc).__name__}: {exc})"
        else:
            reason = ""
        if found is None:
            raise TaskPackageError(
                f"task {declaration.name!r} (declared in {declaration.module}): its "
                f"implementation module {module!r} cannot be found{reason}; fix the "
                "declaration's implementation"
            )


def tasks_of(settings: Settings) -> Registry:
    """The task types of these settings (TASKLINE_TASK_PACKAGES and TASK_PATH)."""
    return registry(settings.task_packages, settings.task_path)


def loaded(settings: Settings) -> Registry:
    """The registry for a process that starts, every task type a line names among it:
    SystemExit naming the fix if it cannot load."""
    try:
        tasks = tasks_of(settings)
        locate_implementations(tasks)
        lines_of(settings).check(tasks)
    except (TaskPackageError, LinesError) as error:
        raise SystemExit(f"taskline: {error}") from error
    return tasks
