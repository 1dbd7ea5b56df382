"""The API never loads task code; the catalogue and the worker agree on task names."""

import json
import subprocess
import sys

from tests.processes import ROOT
from worker.catalog import CATALOG


def test_api_imports_no_task_module() -> None:
    code = (
        "import sys, json, api.main; app = api.main.create_app(); "
        "print(json.dumps(sorted(m for m in sys.modules if m == 'tasks' or "
        "m.startswith('tasks.') or m == 'numpy')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == []


def test_catalogue_names_are_exactly_the_registered_tasks() -> None:
    code = (
        "import json; from worker.celery_app import app; app.loader.import_default_modules(); "
        "print(json.dumps(sorted(n for n in app.tasks if not n.startswith('celery.'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out) == sorted(CATALOG)
