"""The whole stack as `make run` starts it: scripts/run.sh, its own services, supervisord."""

import contextlib
import json
import secrets
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import redis
from websockets.sync.client import connect

from tests.processes import free_port, isolated_env, start, stop
from tests.support import ROOT
from tests.waiting import wait_until

pytestmark = pytest.mark.e2e

RABBITMQCTL = "rabbitmqctl"


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


@contextlib.contextmanager
def make_run_env(tmp_path: Path) -> Iterator[dict[str, str]]:
    """The environment of a `make run` in development with `make secrets`' kind of values:
    its own RabbitMQ user and virtual host, its own Redis with a password on a free port, and
    every secret random. Afterwards the Redis is shut down, the user and vhost deleted."""
    env = {**example_env(), **isolated_env()}
    del env["TASKLINE_USERS"]  # as `make run` does: the admin of TASKLINE_ADMIN_PASSWORD
    tag = env["TASKLINE_QUEUE"]
    redis_port = free_port()
    env.update(
        {
            "TASKLINE_RUN_DIR": str(tmp_path / "var"),
            "TASKLINE_PYTHON": sys.executable,
            "TASKLINE_API_PORT": str(free_port()),
            "TASKLINE_FLOWER_PORT": str(free_port()),
            "TASKLINE_CONSOLE_PORT": str(free_port()),
            "TASKLINE_BROKER_URL": f"amqp://{tag}:{secrets.token_urlsafe(32)}@127.0.0.1:5672/{tag}",
            "TASKLINE_REDIS_URL": f"redis://:{secrets.token_urlsafe(32)}@127.0.0.1:{redis_port}/0",
            **{
                f"TASKLINE_{name}": secrets.token_urlsafe(32)
                for name in ("ADMIN_PASSWORD", "FLOWER_PASSWORD", "CONSOLE_PASSWORD")
            },
            "TASKLINE_SERIAL_SECRET": secrets.token_urlsafe(32),
        }
    )
    try:
        yield env
    finally:
        with (
            contextlib.suppress(redis.RedisError),
            redis.Redis.from_url(env["TASKLINE_REDIS_URL"], socket_timeout=5) as private,
        ):
            private.shutdown(nosave=True)
        subprocess.run([RABBITMQCTL, "-q", "delete_vhost", tag], capture_output=True)
        subprocess.run([RABBITMQCTL, "-q", "delete_user", tag], capture_output=True)


@pytest.mark.timeout(300)  # a first RabbitMQ user takes rabbitmqctl seconds; stopping, 60 s
def test_make_run_uses_its_own_credentials_keeps_its_files_private_and_logs_no_secret(
    tmp_path: Path,
) -> None:
    with make_run_env(tmp_path) as env:
        proc = start([str(ROOT / "scripts" / "run.sh")], env, tmp_path / "terminal.out")
        try:
            secrets_used, results = use_every_part(env)
        finally:
            stop(proc, timeout=90)
        run_dir = Path(env["TASKLINE_RUN_DIR"])
        private = redis.Redis.from_url(env["TASKLINE_REDIS_URL"], decode_responses=True)
        with private:
            # Its own Redis: password, memory bound, no eviction of the truth about tasks.
            assert int(private.config_get("maxmemory")["maxmemory"]) > 0
            assert private.config_get("maxmemory-policy")["maxmemory-policy"] == "noeviction"
            port = urlsplit(env["TASKLINE_REDIS_URL"]).port
            assert Path(private.config_get("dir")["dir"]) == run_dir / f"redis-{port}"
        anonymous = redis.Redis(port=urlsplit(env["TASKLINE_REDIS_URL"]).port or 0)
        with anonymous, pytest.raises(redis.AuthenticationError):
            anonymous.ping()
        assert_private(run_dir)
        assert_no_secret_in(run_dir, [*secrets_used, *results])
    leftovers = subprocess.run(["pgrep", "-f", env["TASKLINE_QUEUE"]], capture_output=True)
    assert leftovers.stdout == b""


def use_every_part(env: dict[str, str]) -> tuple[list[str], list[str]]:
    """Use the API (Basic, bearer, WebSocket and SSE with `access_token`), Flower and the
    console; the secrets and the results that went through them."""
    expected = {"taskline:api", "taskline:worker", "taskline:scheduler", "taskline:flower"}
    wait_until(lambda: all(status(env).get(n) == "RUNNING" for n in expected), 90, 0.5)
    states = status(env)
    assert states["services:rabbitmq"] == states["services:redis"] == "STOPPED"
    flower = f"http://127.0.0.1:{env['TASKLINE_FLOWER_PORT']}"
    wait_until(lambda: _answers(flower), 30, 0.2)
    assert httpx.get(flower).status_code == 401
    flower_auth = (env["TASKLINE_FLOWER_USER"], env["TASKLINE_FLOWER_PASSWORD"])
    assert httpx.get(f"{flower}/api/workers", auth=flower_auth).status_code == 200
    console = f"http://127.0.0.1:{env['TASKLINE_CONSOLE_PORT']}"
    assert httpx.get(console).status_code == 401
    api = f"http://127.0.0.1:{env['TASKLINE_API_PORT']}"
    wait_until(lambda: _answers(f"{api}/ready"), 60, 0.2)
    admin = ("admin", env["TASKLINE_ADMIN_PASSWORD"])
    form = {"username": "admin", "password": env["TASKLINE_ADMIN_PASSWORD"]}
    bearer = httpx.post(f"{api}/auth/token", data=form).json()["access_token"]
    marker = secrets.token_hex(8)
    body = {"name": "reverse", "params": {"text": f"supervised-{marker}"}}
    task_id = httpx.post(f"{api}/tasks", json=body, auth=admin).json()["id"]
    ws = f"ws://127.0.0.1:{env['TASKLINE_API_PORT']}/tasks/{task_id}/ws?access_token={bearer}"
    with connect(ws, open_timeout=10) as socket:
        events = [json.loads(message) for message in socket]  # to the task's end
    assert events, "the WebSocket sent nothing"
    with httpx.stream(
        "GET", f"{api}/events", params={"access_token": bearer}, timeout=10
    ) as stream:
        assert stream.status_code == 200
        next(stream.iter_lines())
    headers = {"Authorization": f"Bearer {bearer}"}
    done = httpx.get(f"{api}/tasks/{task_id}", params={"wait": 30}, timeout=40, headers=headers)
    assert done.json()["result"] == f"{marker[::-1]}-desivrepus"
    body = {"name": "generate_serials", "params": {"code_model": "7777", "number": 0, "count": 3}}
    serial_id = httpx.post(f"{api}/tasks", json=body, auth=admin).json()["id"]
    serials = httpx.get(
        f"{api}/tasks/{serial_id}", params={"wait": 30}, timeout=40, auth=admin
    ).json()
    assert serials["state"] == "SUCCESS", serials
    issued = [s for s in json.dumps(serials["result"]).split('"') if s.endswith("7777000001")]
    assert issued, serials["result"]
    secrets_used = [
        bearer,
        env["TASKLINE_ADMIN_PASSWORD"],
        env["TASKLINE_FLOWER_PASSWORD"],
        env["TASKLINE_CONSOLE_PASSWORD"],
        env["TASKLINE_SERIAL_SECRET"],
        urlsplit(env["TASKLINE_REDIS_URL"]).password or "",
        urlsplit(env["TASKLINE_BROKER_URL"]).password or "",
    ]
    return secrets_used, [marker[::-1], *issued]


def assert_private(run_dir: Path) -> None:
    """Logs, Redis's files and the console's socket: the owner's only."""
    paths = [run_dir, *run_dir.rglob("*")]
    assert any(p.name == "worker.log" for p in paths) and any(
        p.name.startswith("appendonly") for p in paths
    ), paths
    wide = {str(p): oct(stat.S_IMODE(p.stat().st_mode)) for p in paths if p.stat().st_mode & 0o077}
    assert wide == {}


def assert_no_secret_in(run_dir: Path, needles: list[str]) -> None:
    logs = {p: p.read_bytes() for p in run_dir.rglob("*") if p.is_file() and "log" in p.name}
    assert len(logs) >= 6, sorted(logs)  # supervisord, api, worker, scheduler, flower, redis
    found = [(str(p), n) for p, text in logs.items() for n in needles if n.encode() in text]
    assert found == []


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code in (200, 401)
    except httpx.TransportError:
        return False
