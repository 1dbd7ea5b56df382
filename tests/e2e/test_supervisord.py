"""The whole stack under supervisord, as `make run` starts it."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.processes import free_port, isolated_env, settings_of, start, stop
from tests.support import ROOT, remove
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e


def example_env() -> dict[str, str]:
    lines = (ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def status(env: dict[str, str]) -> dict[str, str]:
    url = f"http://127.0.0.1:{env['TASKLINE_CONSOLE_PORT']}"
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "supervisorctl"),
            "-s",
            url,
            "-u",
            env["TASKLINE_CONSOLE_USER"],
            "-p",
            env["TASKLINE_CONSOLE_PASSWORD"],
            "status",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
    )
    return dict(line.split()[:2] for line in result.stdout.splitlines() if line.strip())


def test_supervisord_runs_api_worker_scheduler_flower_and_console(tmp_path: Path) -> None:
    env = {**example_env(), **isolated_env()}
    del env["TASKLINE_USERS"]  # as `make run` does: the admin from .env.example
    env.update(
        {
            "TASKLINE_RUN_DIR": str(tmp_path),
            "TASKLINE_PYTHON": sys.executable,
            "TASKLINE_API_PORT": str(free_port()),
            "TASKLINE_FLOWER_PORT": str(free_port()),
            "TASKLINE_CONSOLE_PORT": str(free_port()),
        }
    )
    proc = start(
        [str(Path(sys.executable).parent / "supervisord"), "-c", "supervisord.conf"],
        env,
        tmp_path / "supervisord.out",
    )
    try:
        expected = {"taskline:api", "taskline:worker", "taskline:scheduler", "taskline:flower"}

        def all_running() -> bool:
            states = status(env)
            return all(states.get(name) == "RUNNING" for name in expected)

        wait_until(all_running, 60, 0.5)
        states = status(env)
        assert states["services:rabbitmq"] == states["services:redis"] == "STOPPED"
        flower = f"http://127.0.0.1:{env['TASKLINE_FLOWER_PORT']}"
        wait_until(lambda: _answers(flower), 30, 0.2)
        assert httpx.get(flower).status_code == 401
        auth = (env["TASKLINE_FLOWER_USER"], env["TASKLINE_FLOWER_PASSWORD"])
        assert httpx.get(f"{flower}/api/workers", auth=auth).status_code == 200
        console = f"http://127.0.0.1:{env['TASKLINE_CONSOLE_PORT']}"
        assert httpx.get(console).status_code == 401
        api = f"http://127.0.0.1:{env['TASKLINE_API_PORT']}"
        wait_until(lambda: _answers(f"{api}/ready"), 60, 0.2)
        body = {"name": "reverse", "params": {"text": "supervised"}}
        admin = ("admin", env["TASKLINE_ADMIN_PASSWORD"])
        task_id = httpx.post(f"{api}/tasks", json=body, auth=admin).json()["id"]
        done = httpx.get(
            f"{api}/tasks/{task_id}", params={"wait": 30}, timeout=40, auth=admin
        ).json()
        assert done["result"] == "desivrepus"
    finally:
        stop(proc, timeout=90)
        settings = settings_of(env)
        remove(settings.broker_url, settings.redis_url, [settings.queue], f"{settings.key_prefix}*")
    leftovers = subprocess.run(["pgrep", "-f", env["TASKLINE_QUEUE"]], capture_output=True)
    assert leftovers.stdout == b""


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code in (200, 401)
    except httpx.TransportError:
        return False
