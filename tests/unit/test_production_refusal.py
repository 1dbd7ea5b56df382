"""Every process refuses to start in production on development defaults, before it connects.

The broker and Redis URLs point at a closed port: a process that went past its guard would
wait for them (and time out here) instead of exiting at once with the refusal.
"""

import os
import subprocess
import sys
import uuid

import pytest

from taskline.core.settings import PREFIX, Settings, as_text
from tests.support import ROOT

PROCESSES = {
    "worker": [sys.executable, "-m", "celery", "-A", "taskline.worker.celery_app", "worker"],
    "scheduler": [sys.executable, "-m", "taskline.worker.scheduler"],
    "Flower": [sys.executable, "-m", "taskline.worker.flower"],
    "supervisord": [sys.executable, "-m", "taskline.core.guard"],
}


def development_defaults(env: str) -> dict[str, str]:
    """Every setting at its development default, given explicitly (no .env can change it)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(PREFIX)}
    environ.update(
        {f"{PREFIX}{name.upper()}": as_text(f.default) for name, f in Settings.model_fields.items()}
    )
    tag = uuid.uuid4().hex[:10]
    environ.update(
        {
            f"{PREFIX}ENV": env,
            f"{PREFIX}BROKER_URL": "amqp://guest:guest@127.0.0.1:1//",
            f"{PREFIX}REDIS_URL": "redis://127.0.0.1:1/0",
            f"{PREFIX}QUEUE": f"test-{tag}",
            f"{PREFIX}KEY_PREFIX": f"test-{tag}:",
        }
    )
    return environ


@pytest.mark.parametrize("process", PROCESSES)
def test_each_process_refuses_development_defaults_in_production(process: str) -> None:
    result = subprocess.run(
        PROCESSES[process],
        cwd=ROOT,
        env=development_defaults("production"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stderr
    assert f"Taskline {process} refuses to start in production" in result.stderr
    for problem in (
        "TASKLINE_SERIAL_SECRET is a published development value: run `make secrets`",
        "TASKLINE_BROKER_URL uses RabbitMQ's guest user",
        "TASKLINE_REDIS_URL has no password",
    ):
        assert problem in result.stderr
    assert "Traceback" not in result.stderr


def test_the_entrypoint_check_passes_in_development() -> None:
    result = subprocess.run(
        PROCESSES["supervisord"],
        cwd=ROOT,
        env=development_defaults("development"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (0, "")
