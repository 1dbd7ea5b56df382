"""A wrong task package stops the API and the worker at start, naming the module and the fix.

Each kind of mistake is tried on the real entry points (the API's factory, a Celery worker),
each in a process of its own: nothing of a wrong package may linger in another test's.
"""

import subprocess
import sys

import pytest

from tests.processes import isolated_env
from tests.support import BROKER_URL, REDIS_URL, ROOT, remove

pytestmark = pytest.mark.e2e

BUILTINS = "taskline.builtins"


def start_api(packages: str) -> subprocess.CompletedProcess[str]:
    env = isolated_env(TASKLINE_TASK_PACKAGES=packages)
    code = "from taskline.api.main import create_app; create_app(); print('started')"
    try:
        return subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:  # a started API marked its Redis's key layout (core.layout)
        remove(BROKER_URL, REDIS_URL, [], f"{env['TASKLINE_KEY_PREFIX']}*")


def boot_worker(packages: str) -> subprocess.CompletedProcess[str]:
    """Boot a worker as far as binding its tasks (Celery imports its modules), then stop."""
    env = isolated_env(TASKLINE_TASK_PACKAGES=packages)
    code = (
        "from taskline.worker.celery_app import app; app.loader.import_default_modules(); "
        "print(sorted(n for n in app.tasks if not n.startswith('celery.')))"
    )
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("packages", "said"),
    [
        (
            f"{BUILTINS},tests.packages.broken",
            "task package 'tests.packages.broken' failed to import (ModuleNotFoundError",
        ),
        (f"{BUILTINS},no_such_package", "remove it from TASKLINE_TASK_PACKAGES"),
        (
            f"{BUILTINS},tests.packages.duplicate",
            "task 'reverse' is declared twice: in taskline.builtins and in "
            "tests.packages.duplicate; rename one of them",
        ),
        ("tests.packages.no_schema", "its params model has no JSON schema"),
        (
            "tests.packages.missing_module",
            "its implementation module 'tests.packages.missing_module.gone' cannot be found",
        ),
        ("tests.packages.support", "declares no task"),
    ],
)
def test_the_api_and_the_worker_refuse_a_wrong_package(packages: str, said: str) -> None:
    for started in (start_api(packages), boot_worker(packages)):
        assert started.returncode != 0, started.stdout
        assert said in started.stderr, started.stderr
        assert "started" not in started.stdout and "[" not in started.stdout


def test_the_worker_refuses_a_declaration_it_cannot_run() -> None:
    started = boot_worker("tests.packages.unimplemented")
    assert started.returncode == 2, started.stdout
    assert (
        "task 'lost' (declared in tests.packages.unimplemented) is declared but not implemented: "
        "tests.packages.unimplemented.work has no function 'lost'"
    ) in started.stderr
    assert start_api("tests.packages.unimplemented").returncode == 0  # its module exists


def test_the_worker_refuses_an_implementation_nothing_loaded_declares() -> None:
    started = boot_worker("tests.packages.orphan")
    assert started.returncode == 2, started.stdout
    assert "implements 'ghost', which no package of TASKLINE_TASK_PACKAGES declares" in (
        started.stderr
    )
    both = boot_worker("tests.packages.orphan,tests.packages.unloaded")
    assert both.returncode == 0, both.stderr
    assert both.stdout.strip() == "['fine', 'ghost']"


def test_a_right_package_loads_beside_the_builtins_and_the_api_never_imports_its_code() -> None:
    packages = f"{BUILTINS},tests.packages.guarded"
    assert start_api(packages).stdout.strip() == "started"  # its code raises on import here
    booted = boot_worker(packages)
    assert booted.returncode == 0, booted.stderr
    assert booted.stdout.strip() == "['generate_serials', 'guarded', 'leibniz_pi', 'reverse']"
