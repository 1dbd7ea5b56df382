"""Who may import whom: the API loads task declarations but no task code and, of the worker,
only the Celery app it builds messages with; the domain (core) stands on its own; the
declarations and the worker agree on task names."""

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

from taskline.core.registry import tasks_of
from taskline.core.settings import Settings
from tests.support import ROOT

# What the API may load of the worker package: the app that builds Celery's messages.
API_MAY_LOAD = {"taskline.worker", "taskline.worker.celery_app"}


def loaded_after(statement: str) -> list[str]:
    """The first-party and numpy modules a fresh interpreter holds after `statement`."""
    code = (
        f"import sys, json; {statement}; print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('taskline', 'numpy'))))"
    )
    # No Redis answers there: the API's checks at start write nothing into a shared one.
    env = {**os.environ, "TASKLINE_REDIS_URL": "redis://127.0.0.1:1/0"}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)


def part(module: str) -> str:
    """Which part of Taskline a module belongs to (`taskline.api.main` → `api`), or its top."""
    names = module.split(".")
    return names[1] if names[0] == "taskline" and len(names) > 1 else names[0]


def imported_packages(package: str) -> dict[str, set[str]]:
    """Per module of a package, the top-level names of the modules its source imports."""
    found = {}
    for path in sorted((ROOT / package.replace(".", "/")).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
            elif isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
        found[str(path.relative_to(ROOT))] = names
    return found


def test_api_loads_no_task_code_and_of_the_worker_only_its_celery_app() -> None:
    modules = loaded_after("import taskline.api.main; taskline.api.main.create_app()")
    implementations = {d.implementation.partition(":")[0] for d in tasks_of(Settings()).values()}
    assert "taskline.builtins" in modules  # the declarations, and nothing of their code
    assert not implementations & set(modules)
    assert not [m for m in modules if part(m) == "numpy"]
    assert {m for m in modules if part(m) == "worker"} <= API_MAY_LOAD
    assert "taskline.core.transitions" in modules  # the check sees the modules it claims to


def test_api_source_imports_of_the_worker_only_its_celery_app() -> None:
    offending = {
        module: sorted(n for n in names if part(n) == "worker" and n not in API_MAY_LOAD)
        for module, names in imported_packages("taskline.api").items()
    }
    assert {m: n for m, n in offending.items() if n} == {}


def test_core_imports_nothing_of_api_worker_or_tasks() -> None:
    offending = {
        module: sorted(n for n in names if part(n) in ("api", "worker", "builtins"))
        for module, names in imported_packages("taskline.core").items()
    }
    assert {m: n for m, n in offending.items() if n} == {}
    assert len(offending) >= 6  # every module of core was read


def test_catalogue_names_are_exactly_the_registered_tasks() -> None:
    code = (
        "import json; from taskline.worker.celery_app import app; "
        "app.loader.import_default_modules(); "
        "print(json.dumps(sorted(n for n in app.tasks if not n.startswith('celery.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == sorted(tasks_of(Settings()))


def test_every_lua_script_documents_its_keys_argv_and_replies() -> None:
    scripts = sorted((ROOT / "taskline" / "core" / "lua").glob("*.lua"))
    assert len(scripts) >= 12
    for script in scripts:
        header = script.read_text().split("\n\n")[0]
        for word in ("KEYS", "ARGV"):
            assert word in header, f"{script.name}: no {word} in its header"
        if script.stem != "task":
            assert "Replies" in header, f"{script.name}: replies undocumented"


def test_no_caller_builds_script_arguments_or_compares_reply_strings() -> None:
    """Scripts are registered and run only in core.transitions, behind typed methods."""
    callers = [
        path
        for package in ("taskline/api", "taskline/worker", "taskline/builtins", "bench")
        for path in (ROOT / package).rglob("*.py")
        if any(
            word in path.read_text().lower()
            for word in ("register_script", "evalsha", "redis.call(")
        )
    ]
    # The result backend's state write too lives in core (taskline/core/lua/store_result.lua).
    assert [str(p.relative_to(ROOT)) for p in callers] == []


# What builds a Redis client or its pool; only core/redis_clients.py may.
CLIENT_BUILDERS = frozenset(
    {"from_url", "from_pool", "Redis", "StrictRedis", "ConnectionPool", "Sentinel", "master_for"}
)
CLIENT_FACTORY = "taskline/core/redis_clients.py"


def called_names(path: Path) -> set[str]:
    """The names of the functions a module calls (`redis.Redis.from_url(…)` → `from_url`)."""
    return {
        node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, (ast.Attribute, ast.Name))
    }


def test_only_the_client_factory_builds_redis_clients() -> None:
    """Every process reaches the main Redis through core.redis_clients, so every one of them
    follows the sentinels alike; a client built from the URL elsewhere would not."""
    builders = {
        str(path.relative_to(ROOT)): sorted(called_names(path) & CLIENT_BUILDERS)
        for package in ("taskline", "scripts")
        for path in (ROOT / package).rglob("*.py")
    }
    assert builders.pop(CLIENT_FACTORY)  # the check sees the calls it looks for
    assert {path: names for path, names in builders.items() if names} == {}


Path  # noqa: B018 (kept for type hints in helpers)


def test_no_task_name_nor_task_specific_field_outside_the_task_packages() -> None:
    """The core, the API and the worker know task types only through their declarations;
    the one exception is HTTP kept for a built-in's sake, in route modules of its own."""
    builtins = tasks_of(Settings(task_packages="taskline.builtins"))
    # A name as code spells it (quoted), the built-ins' own fields, and their subjects.
    words = [re.compile(f"[\"'`]{name}[\"'`]") for name in builtins]
    words += [re.compile(word) for word in ("code_model", "leibniz", "serial range")]
    allowed = {"taskline/api/routes/seeds.py", "taskline/api/routes/serials.py"}
    swagger_ui = ROOT / "taskline" / "api" / "swagger_ui"  # fetched: not the project's code
    found = {
        f"{path.relative_to(ROOT)}: {word.pattern}"
        for part in ("core", "api", "worker")
        for path in (ROOT / "taskline" / part).rglob("*")
        if path.suffix in (".py", ".lua", ".js", ".html")
        and str(path.relative_to(ROOT)) not in allowed
        and swagger_ui not in path.parents
        for word in words
        if word.search(path.read_text().lower())
    }
    assert sorted(found) == []
    assert len(words) >= 6  # the built-ins were read


def test_the_celery_task_keeps_no_state_of_a_run() -> None:
    """A process holds one Celery task object per task type for all its messages: what a run
    learns lives in its own Run (worker.hooks.run), never in an attribute of the task."""
    tasks: list[str] = []
    found: list[str] = []
    for module in ("base", "implementations"):
        path = ROOT / "taskline" / "worker" / f"{module}.py"
        for cls in ast.walk(ast.parse(path.read_text())):
            if not isinstance(cls, ast.ClassDef) or not any(
                ast.unparse(b).partition("[")[0] in ("Task", "TasklineTask") for b in cls.bases
            ):
                continue
            tasks.append(cls.name)
            for node in ast.walk(cls):
                targets = (
                    node.targets
                    if isinstance(node, ast.Assign)
                    else [node.target]
                    if isinstance(node, ast.AnnAssign | ast.AugAssign)
                    else []
                )
                found += [
                    f"{cls.name}:{node.lineno} self.{target.attr}"
                    for target in targets
                    if isinstance(target, ast.Attribute)
                    and isinstance(target.value, ast.Name)
                    and target.value.id == "self"
                ]
    assert found == []
    assert tasks == ["TasklineTask", "DeclaredTask"]  # the check read the task classes


def test_the_run_hooks_know_nothing_of_celery_and_keep_no_module_state() -> None:
    """The steps of a run (worker.hooks) are Celery-free, driven alone in tests: they import
    neither Celery nor the worker's Celery side, and keep nothing in module variables (what a
    run changes is in its Run): only constants and type aliases, named in capitals."""
    celery_side = {"base", "celery_app", "implementations", "context", "publisher", "scheduler"}
    imports = {
        module: sorted(
            n
            for n in names
            if n.split(".")[0] in ("celery", "kombu", "billiard")
            or (n.startswith("taskline.worker.") and n.split(".")[2] in celery_side)
        )
        for module, names in imported_packages("taskline.worker.hooks").items()
    }
    assert {m: n for m, n in imports.items() if n} == {}
    assert len(imports) >= 9  # every hook was read
    state = []
    for path in sorted((ROOT / "taskline" / "worker" / "hooks").glob("*.py")):
        for node in ast.parse(path.read_text()).body:
            targets = (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else []
            )
            state += [
                f"{path.name}: {ast.unparse(t)}"
                for t in targets
                if not (isinstance(t, ast.Name) and t.id[0].isupper())
            ]
    assert state == []
