"""The deployment files are valid, agree with the code and are closed by default.

The compose checks run `docker-compose config` offline, on a copy of docker-compose.yml in a
temporary folder, with only the environment given here: no .env, no TASKLINE_ variable of the
caller's. scripts/ensure-test-tools.sh installs docker-compose; without it they fail, saying so.
"""

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from taskline.core.guard import production_problems
from taskline.core.registry import tasks_of
from taskline.core.settings import PREFIX, Settings
from tests.support import ROOT

SECRETS = (
    "RABBITMQ_PASSWORD",
    "REDIS_PASSWORD",
    "TASKLINE_SERIAL_SECRET",
    "TASKLINE_WEBHOOK_SECRET",
    "TASKLINE_ADMIN_PASSWORD",
    "TASKLINE_FLOWER_PASSWORD",
    "TASKLINE_CONSOLE_PASSWORD",
)


def _compose_command() -> list[str]:
    if (
        shutil.which("docker")
        and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0
    ):
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail(
        "cannot check docker-compose.yml: neither `docker compose` nor `docker-compose` is "
        "installed (scripts/ensure-test-tools.sh installs it as root: apt-get install "
        "docker-compose)"
    )


def write_secrets(folder: Path) -> Path:
    """A .env written by `make secrets`' script in `folder`."""
    env_file = folder / ".env"
    script = ROOT / "scripts" / "write_secrets.py"
    subprocess.run([sys.executable, script, env_file], check=True, capture_output=True)
    return env_file


def compose_config(
    folder: Path, profiles: tuple[str, ...] = (), **environ: str
) -> subprocess.CompletedProcess[str]:
    """`config` of a copy of docker-compose.yml in `folder` with these profiles, with only
    `environ` (and PATH)."""
    shutil.copy(ROOT / "docker-compose.yml", folder / "docker-compose.yml")
    chosen = [arg for profile in profiles for arg in ("--profile", profile)]
    return subprocess.run(
        [*_compose_command(), "-f", "docker-compose.yml", *chosen, "config"],
        cwd=folder,
        env={"PATH": os.environ["PATH"], "HOME": str(folder), **environ},
        capture_output=True,
        text=True,
    )


def resolved(folder: Path, profiles: tuple[str, ...] = (), **environ: str) -> dict[str, Any]:
    """The resolved file, holding the services that `up` with these profiles starts (compose
    v1's `config` shows every profile's; v2's only those)."""
    result = compose_config(folder, profiles, **environ)
    assert result.returncode == 0, result.stderr
    found = yaml.safe_load(result.stdout)
    found["services"] = {
        name: service
        for name, service in found["services"].items()
        if not service.get("profiles") or set(service["profiles"]) & set(profiles)
    }
    return found


def published(service: dict[str, Any]) -> dict[int, str]:
    """Host port to host address of a service, from compose v1's or v2's `config` output."""
    ports = {}
    for port in service.get("ports", []):
        if isinstance(port, dict):  # v2: long syntax
            ports[int(port["published"])] = port.get("host_ip", "")
        else:  # v1: "127.0.0.1:8000:8000/tcp"
            parts = str(port).split("/")[0].split(":")
            ports[int(parts[-2])] = ":".join(parts[:-2]) if len(parts) > 2 else ""
    return ports


def test_without_a_env_file_compose_refuses_to_start_and_says_why(tmp_path: Path) -> None:
    result = compose_config(tmp_path)
    assert result.returncode != 0
    assert "is not set; run `make secrets` to write .env" in result.stderr
    assert any(name in result.stderr for name in SECRETS)


@pytest.mark.parametrize("secret", SECRETS)
def test_compose_names_each_missing_secret(tmp_path: Path, secret: str) -> None:
    env_file = write_secrets(tmp_path)
    lines = env_file.read_text().splitlines()
    assert any(line.startswith(f"{secret}=") for line in lines)
    env_file.write_text("".join(f"{ln}\n" for ln in lines if not ln.startswith(f"{secret}=")))
    result = compose_config(tmp_path)
    assert result.returncode != 0
    assert f"{secret} is not set; run `make secrets`" in result.stderr


def test_with_generated_secrets_every_port_is_on_loopback_and_the_app_in_production(
    tmp_path: Path,
) -> None:
    write_secrets(tmp_path)
    services = resolved(tmp_path)["services"]
    assert set(services) == {"rabbitmq", "redis", "app", "worker"}
    ports = {name: published(service) for name, service in services.items()}
    assert ports == {
        "rabbitmq": {15672: "127.0.0.1"},
        "redis": {},
        "app": {8000: "127.0.0.1", 5555: "127.0.0.1", 9001: "127.0.0.1"},
        "worker": {},
    }
    assert all("env_file" not in service for service in services.values())
    app = services["app"]["environment"]
    assert app["TASKLINE_ENV"] == "production"
    assert app["TASKLINE_FLOWER_CONTROL"] == "false"
    # The stack compose starts passes the guard that each of its processes runs.
    settings = Settings(
        _env_file=None,
        **{k.removeprefix(PREFIX).lower(): v for k, v in app.items() if k.startswith(PREFIX)},
    )
    assert production_problems(settings) == []


def test_compose_standby_workers_join_the_apps_line_in_production(tmp_path: Path) -> None:
    """Scaled as many times as wanted: each container a node of its own (its hostname), the
    same broker, Redis, queue and secrets as the app's, one task at a time."""
    write_secrets(tmp_path)
    services = resolved(tmp_path)["services"]
    worker, app = services["worker"], services["app"]
    assert "container_name" not in worker and "ports" not in worker  # scalable
    command = worker["command"]
    assert command[:6] == ["python", "-m", "celery", "-A", "taskline.worker.celery_app", "worker"]
    assert {"--pool=prefork", "--concurrency=1", "--hostname=standby@%h"} <= set(command)
    env = worker["environment"]
    shared = {
        k: v for k, v in app["environment"].items() if not k.endswith(("_HOST", "PUBLIC_CONSOLES"))
    }
    assert {k: env[k] for k in shared} == shared
    assert env["REMAP_SIGTERM"] == "SIGQUIT"  # a stop lets the running task finish
    settings = Settings(
        _env_file=None,
        **{k.removeprefix(PREFIX).lower(): v for k, v in env.items() if k.startswith(PREFIX)},
    )
    assert settings.env == "production" and production_problems(settings) == []


def test_the_operator_opens_the_api_and_the_consoles_separately(tmp_path: Path) -> None:
    write_secrets(tmp_path)
    services = resolved(tmp_path, TASKLINE_BIND_ADDRESS="0.0.0.0")["services"]
    assert published(services["app"]) == {8000: "0.0.0.0", 5555: "127.0.0.1", 9001: "127.0.0.1"}
    services = resolved(tmp_path, TASKLINE_CONSOLE_BIND_ADDRESS="10.0.0.5")["services"]
    assert published(services["app"]) == {8000: "127.0.0.1", 5555: "10.0.0.5", 9001: "10.0.0.5"}
    assert published(services["rabbitmq"]) == {15672: "10.0.0.5"}


def test_the_compose_file_names_no_env_example_and_no_default_password() -> None:
    text = (ROOT / "docker-compose.yml").read_text()
    assert ".env.example" not in text
    assert "env_file" not in text
    assert "dev-password" not in text


def test_the_image_runs_in_production_as_a_user_on_a_current_python() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "TASKLINE_ENV=production" in dockerfile
    assert "\nUSER taskline\n" in dockerfile
    assert "FROM python:3.14-" in dockerfile
    assert "python -m taskline.core.guard" in dockerfile  # before supervisord and its console start


def test_rabbitmq_consumer_timeout_exceeds_longest_task() -> None:
    conf = (ROOT / "deploy" / "rabbitmq.conf").read_text()
    timeout_ms = int(
        next(
            line.split("=")[1] for line in conf.splitlines() if line.startswith("consumer_timeout")
        )
    )
    assert timeout_ms > tasks_of(Settings()).longest_time_limit * 1000


def test_supervisord_runs_api_worker_flower_and_console() -> None:
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "supervisord.conf")
    programs = {s.split(":", 1)[1] for s in parser.sections() if s.startswith("program:")}
    assert {"api", "worker", "flower", "rabbitmq", "redis"} <= programs
    assert parser.get("group:taskline", "programs") == "worker,scheduler,api,flower"
    assert "--concurrency=1" in parser.get("program:worker", "command")
    assert "--pool=prefork" in parser.get("program:worker", "command")
    assert parser.get("program:worker", "stopasgroup") == "true"
    assert parser.get("program:flower", "command").endswith(
        "-m taskline.worker.flower"
    )  # read-only
    assert "127.0.0.1" not in parser.get("inet_http_server", "port")  # from the environment
    assert "password" in dict(parser.items("inet_http_server"))


def test_make_run_gets_its_own_rabbitmq_user_and_redis_password_from_make_secrets(
    tmp_path: Path,
) -> None:
    values = dict(
        line.split("=", 1)
        for line in write_secrets(tmp_path).read_text().splitlines()
        if line and not line.startswith("#")
    )
    settings = Settings(
        _env_file=None,
        **{k.removeprefix(PREFIX).lower(): v for k, v in values.items() if k.startswith(PREFIX)},
    )
    # The broker and Redis rules of the production guard hold for `make run` too.
    problems = production_problems(settings)
    assert [p for p in problems if "BROKER_URL" in p or "REDIS_URL" in p] == []
    broker, redis_url = urlsplit(settings.broker_url), urlsplit(settings.redis_url)
    assert (broker.username, broker.password) == ("taskline", values["RABBITMQ_PASSWORD"])
    assert broker.path == "/taskline"  # a virtual host of its own
    assert redis_url.password == values["REDIS_PASSWORD"]
    assert redis_url.port != 6379  # its own Redis, not the shared one


def test_redis_is_bounded_and_never_evicts_in_compose_and_in_its_conf(tmp_path: Path) -> None:
    conf = (ROOT / "deploy" / "redis.conf").read_text().splitlines()
    assert "maxmemory-policy noeviction" in conf
    assert any(line.startswith("maxmemory ") for line in conf)
    write_secrets(tmp_path)
    command = resolved(tmp_path)["services"]["redis"]["command"]
    if isinstance(command, str):
        command = command.split()
    assert command[command.index("--maxmemory-policy") + 1] == "noeviction"
    assert command[command.index("--maxmemory") + 1] == "1gb"


def test_supervisord_writes_its_logs_for_the_owner_only() -> None:
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "supervisord.conf")
    assert parser.get("supervisord", "umask") == "077"


def test_every_log_supervisord_writes_is_rotated_within_named_bounds() -> None:
    """No log grows without bound, and none is left to supervisord's defaults: each names its
    size and how many old files it keeps (stderr goes to the same file)."""
    parser = configparser.RawConfigParser()
    parser.read(ROOT / "supervisord.conf")
    megabytes = {"supervisord": _megabytes(parser.get("supervisord", "logfile_maxbytes"))}
    assert int(parser.get("supervisord", "logfile_backups")) >= 1
    for section in (s for s in parser.sections() if s.startswith("program:")):
        assert parser.get(section, "redirect_stderr") == "true", section
        megabytes[section] = _megabytes(parser.get(section, "stdout_logfile_maxbytes"))
        assert 1 <= int(parser.get(section, "stdout_logfile_backups")) <= 20, section
    assert all(0 < size <= 100 for size in megabytes.values()), megabytes
    assert len(megabytes) == 7  # supervisord and its six programs


def _megabytes(text: str) -> float:
    """supervisord's byte sizes: `50MB`, `512KB`, `1GB` or a number of bytes."""
    units = {"KB": 2**10, "MB": 2**20, "GB": 2**30}
    unit = text[-2:].upper()
    return (float(text[:-2]) * units[unit] if unit in units else float(text)) / 2**20


SCALE = ("scale",)
API_REPLICAS = ("api-1", "api-2")


def test_compose_scale_profile_runs_two_apis_behind_an_sse_friendly_proxy(tmp_path: Path) -> None:
    """`--profile scale`: two API containers (nothing published) behind an nginx published on
    loopback, trusted by them as the one peer that names clients; its configuration passes
    streams through unbuffered, with read timeouts far past the keep-alives."""
    write_secrets(tmp_path)
    assert not set(resolved(tmp_path)["services"]) & {*API_REPLICAS, "proxy"}  # profile only
    services = resolved(tmp_path, SCALE)["services"]
    assert {*API_REPLICAS, "proxy", "app", "rabbitmq", "redis"} <= set(services)
    first, second, proxy = services["api-1"], services["api-2"], services["proxy"]
    assert first["command"] == second["command"]
    assert first["environment"] == second["environment"]
    command = first["command"]
    assert command[:4] == ["python", "-m", "uvicorn", "taskline.api.main:create_app"]
    assert "--no-proxy-headers" in command  # X-Forwarded-For is the app's to judge
    assert published(first) == published(second) == {}
    assert published(proxy) == {8080: "127.0.0.1"}
    assert published(
        resolved(tmp_path, SCALE, TASKLINE_BIND_ADDRESS="0.0.0.0")["services"]["proxy"]
    ) == {8080: "0.0.0.0"}
    # The same Redis, broker and secrets as the app: one service, in production.
    env = first["environment"]
    shared = {
        k: v
        for k, v in services["app"]["environment"].items()
        if not k.endswith(("_HOST", "PUBLIC_CONSOLES", "FLOWER_CONTROL"))
    }
    assert {k: env[k] for k in shared} == shared
    settings = Settings(
        _env_file=None,
        **{k.removeprefix(PREFIX).lower(): v for k, v in env.items() if k.startswith(PREFIX)},
    )
    assert settings.env == "production" and production_problems(settings) == []
    assert settings.trusted_proxies == proxy["networks"]["front"]["ipv4_address"]
    # nginx: the mounted file, sending to both replicas, streams unbuffered.
    [mount] = proxy["volumes"]
    source = mount["source"] if isinstance(mount, dict) else mount.split(":")[0]
    assert Path(source).name == "nginx.conf"
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    directives = [line.split("#")[0].strip().rstrip(";") for line in conf.splitlines()]
    servers = [d.split()[1] for d in directives if d.startswith("server ") and ":" in d]
    assert servers == [f"{name}:8000" for name in API_REPLICAS]
    assert "listen 8080" in directives
    for setting in ("proxy_buffering off", "proxy_request_buffering off", "proxy_http_version 1.1"):
        assert setting in directives, setting
    assert "proxy_set_header Upgrade $http_upgrade" in directives  # WebSockets
    assert "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for" in directives
    timeouts = {d.split()[0]: d.split()[1] for d in directives if d.endswith("_timeout 1h")}
    assert set(timeouts) == {"proxy_read_timeout", "proxy_send_timeout"}


def test_compose_lines_profile_runs_a_worker_of_one_line_beside_the_app(tmp_path: Path) -> None:
    """TASKLINE_LINES reaches every container; profile `lines` adds a worker consuming the
    line TASKLINE_WORKER_LINE names, with the same broker, Redis and secrets as the app's;
    without the profile the stack is the default one."""
    write_secrets(tmp_path)
    lines = "slow=leibniz_pi;default=*"
    assert "line-worker" not in resolved(tmp_path, TASKLINE_LINES=lines)["services"]
    services = resolved(tmp_path, ("lines",), TASKLINE_LINES=lines)["services"]
    assert set(services) == {"rabbitmq", "redis", "app", "worker", "line-worker"}
    worker, app = services["line-worker"], services["app"]
    assert "container_name" not in worker and "ports" not in worker  # scalable
    assert worker["command"][:6] == services["worker"]["command"][:6]
    assert {"--pool=prefork", "--concurrency=1"} <= set(worker["command"])
    env = worker["environment"]
    assert env["TASKLINE_WORKER_LINE"] == "slow" and env["REMAP_SIGTERM"] == "SIGQUIT"
    assert app["environment"]["TASKLINE_LINES"] == env["TASKLINE_LINES"] == lines
    shared = {
        k: v for k, v in app["environment"].items() if not k.endswith(("_HOST", "PUBLIC_CONSOLES"))
    }
    assert {k: env[k] for k in shared} == shared
    settings = Settings(
        _env_file=None,
        **{k.removeprefix(PREFIX).lower(): v for k, v in env.items() if k.startswith(PREFIX)},
    )
    assert settings.worker_line == "slow" and production_problems(settings) == []


MONITORING = ("monitoring",)
DASHBOARD = ROOT / "deploy" / "grafana" / "dashboards" / "taskline.json"


def exposed_names() -> set[str]:
    """Every sample name `/metrics` shows, from the code that writes it (api.metrics), with a
    figure of each kind counted."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from taskline.api import metrics
    from taskline.core import task_metrics

    process = metrics.ProcessMetrics()
    process.created("reverse")
    process.answered("GET", "/tasks/{task_id}", 200, 0.001)
    process.flush()
    ended = task_metrics.Ended(
        ends={("reverse", "SUCCESS"): 1},
        waits={"reverse": task_metrics.Histogram()},
        runs={"reverse": task_metrics.Histogram()},
    )
    report = {"node": "n", "line": "default"}
    live = metrics.scraped(
        {"QUEUED": 1}, {"default": 1}, {"default": 0}, {"default": 1}, 1, [report],
        {"default": "n"}, ended, 0,
    )  # fmt: skip
    text = generate_latest(process.registry) + metrics.exposed(live)
    return {
        sample.name
        for family in text_string_to_metric_families(text.decode())
        for sample in family.samples
    }


def test_compose_monitoring_profile_runs_prometheus_and_grafana_on_loopback(
    tmp_path: Path,
) -> None:
    """`--profile monitoring`: Prometheus (scraping the app as the admin) and Grafana with its
    data source and dashboard provisioned, published on loopback only."""
    write_secrets(tmp_path)
    assert not set(resolved(tmp_path)["services"]) & {"prometheus", "grafana"}  # profile only
    services = resolved(tmp_path, MONITORING)["services"]
    assert {"prometheus", "grafana", "app"} <= set(services)
    assert published(services["prometheus"]) == {9090: "127.0.0.1"}
    assert published(services["grafana"]) == {3000: "127.0.0.1"}
    volumes = " ".join(str(v) for v in services["grafana"]["volumes"])
    assert "deploy/grafana/provisioning" in volumes and "deploy/grafana/dashboards" in volumes
    scrape = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())["scrape_configs"]
    (job,) = scrape
    assert job["metrics_path"] == "/metrics" and job["static_configs"][0]["targets"] == ["app:8000"]
    assert job["basic_auth"]["username"] == "admin" and "password_file" in job["basic_auth"]
    sources = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    (source,) = yaml.safe_load(sources.read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"


def test_every_dashboard_panel_shows_metrics_that_the_api_exposes() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    sources = ROOT / "deploy" / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
    uid = yaml.safe_load(sources.read_text())["datasources"][0]["uid"]
    names = exposed_names()
    titles = set()
    for panel in dashboard["panels"]:
        titles.add(panel["title"])
        assert panel["datasource"]["uid"] == uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = set(re.findall(r"taskline_[a-z_]+", target["expr"]))
            assert used, target["expr"]
            assert used <= names, (panel["title"], used - names)
    # throughput, wait and run times, HTTP latency, line depth, workers
    for word in ("ended", "Wait", "Run", "latency", "depth", "Workers"):
        assert any(word in title for title in titles), word
