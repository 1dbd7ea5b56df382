"""One Settings class for every process and for supervisord (env prefix TASKLINE_).

The defaults are the development defaults, written here only: `.env.example` is generated
from this class (`python -m taskline.core.settings --example`, checked by a test), and supervisord
gets its values from it too (`python -m taskline.core.settings --shell`, sourced by scripts/env.sh).
"""

import argparse
import shlex
from functools import lru_cache
from typing import Annotated, Literal, Self
from urllib.parse import urlsplit

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from taskline.core.lines import Lines, parse_lines
from taskline.core.webhooks import hooks_of

PREFIX = "TASKLINE_"


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def sentinel_addresses(text: str) -> list[tuple[str, int]]:
    """The (host, port) of each sentinel of TASKLINE_REDIS_SENTINELS (`host:port,…`; an IPv6
    host in brackets); ValueError naming the entry that is none."""
    found = []
    for entry in (part.strip() for part in text.split(",")):
        host, colon, port = entry.rpartition(":")
        host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
        if not (colon and host and port.isdecimal() and 0 < int(port) < 65536):
            raise ValueError(
                f"{entry!r} is not host:port (a port from 1 to 65535): give the sentinels as "
                "host:port,host:port,…, e.g. 10.0.0.1:26379,10.0.0.2:26379"
            )
        found.append((host, int(port)))
    return found


class Settings(BaseSettings):
    """Everything configurable; the defaults suit a local development run."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=".env", extra="ignore")

    env: Annotated[Literal["development", "production"], BeforeValidator(_lower)] = Field(
        "development", description="`production` refuses every development default."
    )
    broker_url: str = Field("amqp://guest:guest@127.0.0.1:5672//", description="RabbitMQ.")
    redis_url: str = Field(
        "redis://127.0.0.1:6379/0", description="Redis: task records and Celery's results."
    )
    redis_sentinels: str = Field(
        "",
        description="Redis Sentinels (host:port, comma-separated): when set, every process asks "
        "them where the primary is and follows a failover; the Redis URL then gives only the "
        "password, user, database and TLS, not the host.",
    )
    redis_master: str = Field(
        "taskline", description="The name under which the sentinels watch the primary."
    )
    redis_replicas_to_ack: int = Field(
        1,
        ge=0,
        description="With sentinels: a 202 waits until this many replicas hold the new task "
        "(WAIT, at most half of connect_timeout; else a 503 and no task); 0: a 202 waits for none.",
    )
    queue: str = Field("taskline", description="The queue (and exchange) name.")
    queue_type: Annotated[Literal["classic", "quorum"], BeforeValidator(_lower)] = Field(
        "classic",
        description="`classic`: one RabbitMQ node's priority queue delivers the turns in "
        "order; `quorum`: a queue replicated over a RabbitMQ cluster, whose turns each run "
        "the head of the Redis line (the order comes from Redis).",
    )
    lines: str = Field(
        "",
        description="Lines, each an ordered queue with its own worker: LINE=TYPE,TYPE;LINE=* "
        "(e.g. slow=render,export;default=*). The line given * takes every other task type and "
        "keeps the queue above; empty: one line, default=*.",
    )
    worker_line: str = Field(
        "", description="The line a worker started without -Q consumes; empty: the * line."
    )
    key_prefix: str = Field("taskline:", description="Prefix of every Redis key.")
    task_packages: str = Field(
        "taskline.builtins",
        description="The packages whose task types run here (comma-separated, importable "
        "by the API and the worker alike); each declares its types with taskline.declare.",
    )
    task_path: str = Field(
        "",
        description="Folders (colon-separated) searched first for the task packages, e.g. "
        "examples/reports; empty: only the installed packages.",
    )
    retention_seconds: int = Field(
        7 * 24 * 3600, description="How long finished tasks and their results are kept."
    )
    connect_timeout: float = Field(
        2.0, description="Seconds before RabbitMQ or Redis count as unavailable (503)."
    )

    api_host: str = Field("127.0.0.1", description="The API's address (supervisord).")
    api_port: int = 8000
    flower_host: str = Field("127.0.0.1", description="Flower's address (supervisord).")
    flower_port: int = 5555
    flower_user: str = "admin"
    flower_password: SecretStr = SecretStr("flower-dev-password")
    console_host: str = Field(
        "127.0.0.1", description="supervisord's web console (it can stop every process)."
    )
    console_port: int = 9001
    console_user: str = "admin"
    console_password: SecretStr = SecretStr("console-dev-password")
    services_autostart: bool = Field(
        False, description="true: supervisord also runs RabbitMQ and Redis (all-in-one)."
    )
    flower_control: bool = Field(
        False,
        description="true: Flower may send, revoke and abort tasks and control workers "
        "(outside Taskline's records); false: Flower only shows.",
    )
    allow_public_consoles: bool = Field(
        False,
        description="true: in production, the console and Flower may listen on a "
        "non-loopback address.",
    )

    serial_secret: SecretStr = Field(
        SecretStr("serial-dev-secret"), description="HMAC key of serial-number checksums."
    )

    users: str = Field(
        "",
        description='API users as JSON: {"name": {"password_hash": "$argon2id$…", "role": '
        '"admin"|"viewer"|"user"}}; without them or a users file, one `admin` with admin_password.',
    )
    users_file: str = Field("", description="A file holding the users' JSON instead.")
    admin_password: SecretStr = SecretStr("admin-dev-password")
    token_ttl_seconds: int = Field(3600, description="Bearer token lifetime.")
    max_body_bytes: int = Field(1_048_576, description="Request body limit (413 beyond).")
    creations_per_minute: int = Field(600, description="Task creations per user and minute.")
    max_waiting_per_user: int = Field(10_000, description="Waiting tasks per user.")
    max_task_bytes: int = Field(
        2_097_152,
        description="Bytes one task may hold in Redis, its params and its result together as "
        "stored (UTF-8 JSON): a submission or edit over it is a 413, a result over it ends "
        "the task FAILURE.",
    )
    max_user_bytes: int = Field(
        268_435_456,
        description="Bytes the params and results of one user's kept tasks may hold together "
        "(until deleted or forgotten); a submission or edit past it is a 429.",
    )
    preview_bytes: int = Field(
        4096,
        description="Listings, the /events snapshot and its events cut each task's params, "
        "progress, result and error to this many bytes (`truncated: true`; the task's own "
        "URL gives the whole).",
    )
    page_preview_bytes: int = Field(
        458_752,
        description="The cut parts of all the tasks of one page or snapshot together stay "
        "within this (shorter cuts on larger pages), so a page stays under 1 MiB.",
    )
    search_most_names: int = Field(
        20,
        ge=1,
        le=100,
        description="Task names one listing may ask for (`?name=a&name=b`); each name, times "
        "each state asked, is one index read for the page; 422 beyond.",
    )
    search_most_examined: int = Field(
        1000,
        ge=10,
        le=100_000,
        description="Tasks one listing call examines beside the indexes: the tasks an id "
        "prefix names (a 422 beyond: a longer prefix), and those checked against a finished "
        "time range (a page may then come short, with a cursor to go on from).",
    )
    search_value_bytes: int = Field(
        256,
        ge=1,
        le=4096,
        description="The longest value of a searchable param that is indexed (`GET "
        "/tasks?param.text=…`): a longer one is not, and a search by one is a 422.",
    )
    max_streams_per_user: int = Field(
        20, description="Open event streams and waiting long polls per user; 429 beyond."
    )
    signin_failures_per_name: int = Field(
        5, description="Failed sign-ins of one user name per window before it is locked out."
    )
    signin_failures_per_address: int = Field(
        20, description="Failed sign-ins from one client address per window before a lockout."
    )
    signin_window_seconds: float = Field(
        900.0, description="How long failed sign-ins are counted, from the first one."
    )
    signin_lockout_seconds: float = Field(
        30.0, description="First lockout (429); each further one within a window doubles it."
    )
    signin_lockout_max_seconds: float = Field(3600.0, description="Longest lockout.")
    signin_known_seconds: float = Field(
        7 * 24 * 3600.0,
        description="A name that signed in from an address is spared that address's lockout "
        "for this long (its own budget still applies).",
    )
    trusted_proxies: str = Field(
        "",
        description="Reverse proxies (addresses or networks, comma-separated) whose "
        "X-Forwarded-For names the client; none by default, loopback included.",
    )
    serial_checks_per_minute: int = Field(
        60, description="Serial checks per user and per client address a minute; 429 beyond."
    )
    max_tokens_per_user: int = Field(
        100, description="Live bearer tokens per user; issuing one more revokes the oldest."
    )
    signin_hash_threads: int = Field(
        2, description="Threads checking passwords (argon2, 64 MiB each), apart from the rest."
    )
    signin_hash_waiting: int = Field(
        8, description="Password checks that may wait for those threads; beyond: 503."
    )
    cancel_grace_seconds: float = Field(
        3.0, description="A running task that ignores a cancel is killed after this long."
    )
    bulk_max: int = Field(
        500,
        ge=1,
        le=10_000,
        description="Most tasks one bulk cancel, retry or delete acts on: the ids it may name "
        "(422 beyond), the matching tasks a filter call goes through before it answers with a "
        "cursor to continue.",
    )
    soft_shutdown_seconds: float = Field(
        30.0, description="A stopping worker lets its task run this long, then requeues it."
    )
    retry_errors_kept: int = Field(
        10,
        ge=1,
        le=100,
        description="Failures of retried attempts a task's record keeps in `errors`, the "
        "oldest going first (1 to 100; its history keeps up to 100 changes, these among them).",
    )
    traceback_bytes: int = Field(
        8192,
        ge=0,
        le=65_536,
        description="Bytes of a failed run's traceback its record keeps (the end, which names "
        "the raising line; 0: none), shown to admins only and counted in its owner's bytes.",
    )
    progress_interval: float = Field(
        0.2, description="Minimum seconds between two progress writes of a task."
    )
    estimate_samples: int = Field(
        20,
        ge=1,
        le=1000,
        description="Run times kept per task type (and per size bucket, where the type declares "
        "`estimate_by`): the median of these is a run's estimate.",
    )
    estimate_ahead: int = Field(
        50,
        ge=1,
        le=1000,
        description="Most waiting tasks ahead of a task that its expected start adds up; "
        "beyond them it extrapolates by their mean.",
    )
    estimate_default_seconds: float = Field(
        1.0,
        ge=0,
        description="A run's estimate while its type has no run time recorded yet.",
    )
    worker_expiry_seconds: float = Field(
        10.0,
        gt=2.0,
        description="A worker's report (GET /workers) lapses this long after its last "
        "heartbeat (one every 2 s): a worker gone without a word drops out of the list then, "
        "and counts as gone for the scheduler.",
    )
    log_format: Annotated[Literal["text", "json"], BeforeValidator(_lower)] = Field(
        "text",
        description="How every process writes its log: `text` (readable lines) or `json` "
        "(one JSON object per line: time, level, logger, process, message and, where known, "
        "request_id, task_id and user).",
    )
    access_log: bool = Field(
        True,
        description="true: the API writes one line per request (method, route template, "
        "status, duration, request id, user); false: none.",
    )
    metrics: bool = Field(
        True,
        description="true: the API counts submissions and HTTP requests, and the scripts "
        "that record tasks' ends count them, for `/metrics`; false: none counts (`/metrics` "
        "still tells what it reads at the scrape: tasks by state, lines, workers).",
    )
    reconcile_seconds: float = Field(
        10.0,
        description="How often the scheduler compares the line with RabbitMQ's queue; a turn "
        "missing twice in a row is published again.",
    )
    webhook_hosts: str = Field(
        "",
        description="Hosts a task's `callback_url` may name (comma-separated, exact names); "
        "empty: no callback is accepted (422).",
    )
    webhooks: str = Field(
        "",
        description="Global webhooks of ended tasks: STATES=URL entries separated by `;`, "
        "STATES among SUCCESS, FAILURE, CANCELLED or * (e.g. "
        "FAILURE=https://alerts.example/hook;SUCCESS,FAILURE=https://ci.example/done).",
    )
    webhook_secret: SecretStr = Field(
        SecretStr("webhook-dev-secret"),
        description="HMAC-SHA256 key of the Taskline-Signature header of webhook calls.",
    )
    webhook_retry_seconds: float = Field(
        3600.0,
        gt=0,
        description="A webhook that keeps failing is retried (exponential backoff) this long "
        "after the task ended, then given up.",
    )
    webhook_connect_timeout: float = Field(
        2.0, gt=0, description="Seconds to connect to a webhook's host."
    )
    webhook_read_timeout: float = Field(
        5.0,
        gt=0,
        description="Seconds to wait for a webhook's answer; an attempt takes at most this and "
        "the connect timeout in all, however slowly the answer comes.",
    )
    webhook_response_bytes: int = Field(
        4096, ge=0, description="Bytes of a webhook's answer read per attempt; the rest is dropped."
    )
    webhook_outbox_max: int = Field(
        10_000,
        ge=1,
        description="Webhook deliveries waiting at most; further ended tasks wait in line "
        "for room (one entry each).",
    )

    @field_validator("webhooks")
    @classmethod
    def _webhooks_are_readable(cls, value: str) -> str:
        hooks_of(value)  # WebhookSettingError (a ValueError) says why
        return value

    @field_validator("redis_sentinels")
    @classmethod
    def _sentinels_are_addresses(cls, value: str) -> str:
        if value.strip():
            try:
                sentinel_addresses(value)
            except ValueError as exc:
                raise ValueError(f"TASKLINE_REDIS_SENTINELS: {exc}") from None
        return value.strip()

    @field_validator("redis_master")
    @classmethod
    def _master_is_a_name(cls, value: str) -> str:
        if not value or any(c.isspace() for c in value):
            raise ValueError(
                f"TASKLINE_REDIS_MASTER: {value!r} is not a master name: give the name the "
                "sentinels monitor (`sentinel monitor NAME host port quorum`), without spaces"
            )
        return value

    @model_validator(mode="after")
    def _lines_are_readable(self) -> Self:
        found = parse_lines(self.lines, self.queue)  # LinesError (a ValueError) says why
        if self.worker_line and self.worker_line not in found:
            raise ValueError(
                f"TASKLINE_WORKER_LINE: {self.worker_line!r} is none of the lines of "
                f"TASKLINE_LINES ({', '.join(found.names)})"
            )
        return self

    @model_validator(mode="after")
    def _sentinels_need_a_network_url(self) -> Self:
        scheme = urlsplit(self.redis_url).scheme
        if self.redis_sentinels and scheme not in ("redis", "rediss"):
            raise ValueError(
                f"TASKLINE_REDIS_SENTINELS is set but TASKLINE_REDIS_URL is a {scheme}:// URL: "
                "with sentinels give a redis:// (or rediss://) URL, whose password, user and "
                "database are used on the primary the sentinels name"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """Read the settings once per process."""
    return Settings()


@lru_cache
def _lines(text: str, queue: str) -> Lines:
    return parse_lines(text, queue)


def lines_of(settings: Settings) -> Lines:
    """The lines of these settings (TASKLINE_LINES and TASKLINE_QUEUE), read once."""
    return _lines(settings.lines, settings.queue)


def as_text(value: object) -> str:
    """A setting as an environment variable holds it (booleans as supervisord reads them)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def example() -> str:
    """The text of .env.example: every setting at its development default, described."""
    lines = ["# Development defaults, generated by: python -m taskline.core.settings --example"]
    lines.append("# Copy to .env to change them; never use these in production.")
    for name, field in Settings.model_fields.items():
        if field.description:
            lines.append(f"# {field.description}")
        lines.append(f"{PREFIX}{name.upper()}={as_text(field.default)}")
    return "\n".join(lines) + "\n"


def shell(settings: Settings) -> str:
    """`export` lines of every setting as this process reads them (environment and .env)."""
    return "".join(
        f"export {PREFIX}{name.upper()}={shlex.quote(as_text(getattr(settings, name)))}\n"
        for name in Settings.model_fields
    )


def line_workers(settings: Settings) -> str:
    """supervisord's programs for the worker of each line but the main one (whose worker is
    supervisord.conf's own `worker`), included from the run folder."""
    text = "; The worker of each line but the main one: written by scripts/env.sh from the\n"
    text += "; settings (python -m taskline.core.settings --line-workers).\n"
    others = [line for line in lines_of(settings) if not line.main]
    for line in others:
        text += (
            f"\n[program:worker-{line.name}]\n"
            "command=%(ENV_TASKLINE_PYTHON)s -m celery -A taskline.worker.celery_app worker\n"
            f"    -Q {line.queue} --pool=prefork --concurrency=1 --loglevel=INFO\n"
            f"    --hostname=taskline-{line.name}@%%h\n"
            "priority=10\nautorestart=true\nstartsecs=3\n"
            'environment=REMAP_SIGTERM="SIGQUIT"\n'
            "stopsignal=TERM\nstopwaitsecs=60\nstopasgroup=true\nkillasgroup=true\n"
            "redirect_stderr=true\n"
            f"stdout_logfile=%(ENV_TASKLINE_RUN_DIR)s/worker-{line.name}.log\n"
        )
    if others:
        names = ",".join(f"worker-{line.name}" for line in others)
        text += f"\n[group:lines]\nprograms={names}\n"
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--example", action="store_true", help="print .env.example")
    parser.add_argument("--shell", action="store_true", help="print export lines for a shell")
    parser.add_argument(
        "--line-workers", action="store_true", help="print supervisord's workers of the lines"
    )
    args = parser.parse_args()
    if args.line_workers:
        print(line_workers(Settings()), end="")
        return
    print(example() if args.example else shell(Settings()), end="")


if __name__ == "__main__":
    main()
