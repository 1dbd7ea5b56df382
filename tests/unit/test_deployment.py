"""The deployment files are valid and agree with the code."""

import configparser
import shutil
import subprocess

import pytest

from core.catalog import LONGEST_TIME_LIMIT
from tests.processes import ROOT


def _compose_command() -> list[str] | None:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return None


def test_compose_file_is_valid() -> None:
    command = _compose_command()
    if command is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed")
    result = subprocess.run(
        [*command, "-f", "docker-compose.yml", "config", "--services"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"rabbitmq", "redis", "app"}


def test_rabbitmq_consumer_timeout_exceeds_longest_task() -> None:
    conf = (ROOT / "deploy" / "rabbitmq.conf").read_text()
    timeout_ms = int(
        next(
            line.split("=")[1] for line in conf.splitlines() if line.startswith("consumer_timeout")
        )
    )
    assert timeout_ms > LONGEST_TIME_LIMIT * 1000


def test_supervisord_runs_api_worker_flower_and_console() -> None:
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "supervisord.conf")
    programs = {s.split(":", 1)[1] for s in parser.sections() if s.startswith("program:")}
    assert {"api", "worker", "flower", "rabbitmq", "redis"} <= programs
    assert parser.get("group:taskline", "programs") == "worker,scheduler,api,flower"
    assert "--concurrency=1" in parser.get("program:worker", "command")
    assert "--pool=prefork" in parser.get("program:worker", "command")
    assert parser.get("program:worker", "stopasgroup") == "true"
    assert "127.0.0.1" not in parser.get("inet_http_server", "port")  # from the environment
    assert "password" in dict(parser.items("inet_http_server"))
