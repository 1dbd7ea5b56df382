"""One Settings class shared by the API, the worker and the tools (env prefix TASKLINE_)."""

from functools import lru_cache

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything configurable; the defaults suit a local development run."""

    model_config = SettingsConfigDict(env_prefix="TASKLINE_", env_file=".env", extra="ignore")

    env: str = "development"
    broker_url: str = "amqp://guest:guest@127.0.0.1:5672//"
    redis_url: str = "redis://127.0.0.1:6379/0"
    queue: str = "taskline"
    key_prefix: str = "taskline:"
    retention_seconds: int = 7 * 24 * 3600
    # How long the API waits for RabbitMQ or Redis before answering 503.
    connect_timeout: float = 2.0

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    flower_port: int = 5555
    flower_user: str = "admin"
    flower_password: SecretStr = SecretStr("flower-dev-password")
    console_host: str = "127.0.0.1"
    console_port: int = 9001
    console_user: str = "admin"
    console_password: SecretStr = SecretStr("console-dev-password")

    serial_secret: SecretStr = SecretStr("serial-dev-secret")

    # Users: JSON {"name": {"password_hash": "$argon2id$…", "role": "admin"|"user"}}, inline
    # or in a file; without any, one `admin` user with `admin_password`.
    users: str = ""
    users_file: str = ""
    admin_password: SecretStr = SecretStr("admin-dev-password")
    token_ttl_seconds: int = 3600
    # Guards: request bodies, task creations per user and minute, waiting tasks per user.
    max_body_bytes: int = 1_048_576
    creations_per_minute: int = 600
    max_waiting_per_user: int = 10_000
    # Seconds a running task has to honour a cancel before its pool child is killed.
    cancel_grace_seconds: float = 3.0
    # Seconds a stopping worker lets its running task finish before requeueing it.
    soft_shutdown_seconds: float = 30.0
    # Minimum seconds between two progress writes of one task.
    progress_interval: float = 0.2


DEVELOPMENT_DEFAULTS = {
    "serial_secret": "serial-dev-secret",
    "admin_password": "admin-dev-password",
    "flower_password": "flower-dev-password",
    "console_password": "console-dev-password",
}


def production_problems(settings: Settings) -> list[str]:
    """What keeps these settings from being fit for production (empty when they are)."""
    problems = [
        f"TASKLINE_{name.upper()} is the development default"
        for name, default in DEVELOPMENT_DEFAULTS.items()
        if getattr(settings, name).get_secret_value() == default
        and not (name == "admin_password" and (settings.users or settings.users_file))
    ]
    if "guest:guest@" in settings.broker_url:
        problems.append("TASKLINE_BROKER_URL uses RabbitMQ's guest user")
    return problems


@lru_cache
def get_settings() -> Settings:
    """Read the settings once per process."""
    return Settings()
