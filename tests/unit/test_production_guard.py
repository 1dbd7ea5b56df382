"""The production guard: each rule, what its refusal says, and the API refusing to start."""

import pytest

from taskline.api.main import create_app
from taskline.core.guard import UnsafeProductionError, check, is_loopback, production_problems
from taskline.core.settings import Settings

SAFE = {
    "env": "production",
    "broker_url": "amqp://taskline:Xq7vR2mN9pL4sT8wZ3yB@rabbit:5672//",
    "redis_url": "redis://:Hf6jK1nQ5rV9xC2bM8tW@redis:6379/0",
    "serial_secret": "Sd4fG7hJ1kL0zX9cV8bN6mQ2",
    "webhook_secret": "Wh5kL8mN2pQ4rS6tU9vX",
    "admin_password": "Ap3oI5uY7tR9eW1qA2sD",
    "flower_password": "Fl8kJ6hG4fD2sA0pO9iU",
    "console_password": "Co1nS3oL5eP7aS9sW0rD",
}
SECRETS = (
    "serial_secret",
    "webhook_secret",
    "admin_password",
    "flower_password",
    "console_password",
)


def production(**changes: object) -> Settings:
    """Safe production settings with `changes`; no .env file is read."""
    return Settings(_env_file=None, **{**SAFE, **changes})


def test_safe_production_settings_pass_and_the_api_starts() -> None:
    assert production_problems(production()) == []
    assert create_app(production()).title == "Taskline"


def test_the_api_refuses_development_defaults_naming_each_setting() -> None:
    settings = Settings(_env_file=None, env="Production")  # any case
    with pytest.raises(UnsafeProductionError, match="Taskline API refuses to start") as refusal:
        create_app(settings)
    message = str(refusal.value)
    for name in (*SECRETS, "broker_url", "redis_url"):
        assert f"TASKLINE_{name.upper()}" in message
    assert "run `make secrets`" in message


def test_development_checks_nothing() -> None:
    settings = production(env="development", serial_secret="x", broker_url="amqp://h//")
    check(settings, "API")
    assert create_app(settings).title == "Taskline"


@pytest.mark.parametrize("name", SECRETS)
def test_a_short_or_empty_secret_is_refused_with_how_to_fix_it(name: str) -> None:
    for value in ("", "a" * 15):
        assert production_problems(production(**{name: value})) == [
            f"TASKLINE_{name.upper()} is shorter than 16 characters: "
            "run `make secrets` or set a long random value"
        ]
    assert production_problems(production(**{name: "a" * 16})) == []


@pytest.mark.parametrize("name", SECRETS)
def test_a_published_value_is_refused_whatever_its_length(name: str) -> None:
    for value in (Settings.model_fields[name].default.get_secret_value(), "taskline-dev-password"):
        (problem,) = production_problems(production(**{name: value}))
        assert problem.startswith(f"TASKLINE_{name.upper()} is a published development value")


def test_the_admin_password_is_not_checked_when_users_are_configured() -> None:
    assert production_problems(production(admin_password="", users='{"a": {}}')) == []
    assert production_problems(production(admin_password="", users_file="/etc/u.json")) == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("amqp://rabbit:5672//", "has no user or password (RabbitMQ would be asked for guest"),
        ("amqp://rabbit//", "has no user or password"),
        ("amqp://guest:guest@rabbit:5672//", "uses RabbitMQ's guest user"),
        ("amqp://guest:Xq7vR2mN9pL4sT8wZ3yB@rabbit//", "uses RabbitMQ's guest user"),
        ("amqp://taskline@rabbit//", "password is shorter than 16 characters"),
        ("amqp://taskline:short@rabbit//", "password is shorter than 16 characters"),
        ("amqp://taskline:%2F%2F%2F%2F%2F%2F@rabbit//", "password is shorter than 16"),
        ("amqp://taskline:taskline-dev-password@rabbit//", "is a published development value"),
        ("amqp://taskline:Xq7vR2mN9pL4sT8wZ3yB@a//;amqp://b//", "has no user or password"),
        ("amqp://taskline:Xq7vR2mN9pL4sT8wZ3yB@rabbit:port//", "cannot be parsed"),
    ],
)
def test_a_broker_url_without_its_own_strong_credentials_is_refused(url: str, says: str) -> None:
    (problem,) = production_problems(production(broker_url=url))
    assert problem.startswith("TASKLINE_BROKER_URL")
    assert says in problem


def test_a_broker_url_with_a_user_and_a_long_password_passes() -> None:
    for url in (
        "amqps://taskline:Xq7vR2mN9pL4sT8wZ3yB@rabbit:5671/taskline",
        "amqp://taskline:Xq7vR2mN9pL4sT8wZ3yB@a//;amqp://taskline:Xq7vR2mN9pL4sT8wZ3yB@b//",
    ):
        assert production_problems(production(broker_url=url)) == []


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis://redis:6379/0", "has no password: set Redis's requirepass"),
        ("redis://default@redis:6379/0", "has no password"),
        ("redis://:short@redis:6379/0", "password is shorter than 16 characters"),
        ("rediss://:taskline-dev-password@redis/0", "is a published development value"),
        ("unix:///run/redis.sock?db=0", "has no password"),
    ],
)
def test_a_redis_url_without_a_strong_password_is_refused(url: str, says: str) -> None:
    (problem,) = production_problems(production(redis_url=url))
    assert problem.startswith("TASKLINE_REDIS_URL")
    assert says in problem


def test_a_redis_url_with_a_long_password_passes() -> None:
    for url in (
        "redis://default:Hf6jK1nQ5rV9xC2bM8tW@redis:6379/0",
        "unix:///run/redis.sock?db=0&password=Hf6jK1nQ5rV9xC2bM8tW",
    ):
        assert production_problems(production(redis_url=url)) == []


@pytest.mark.parametrize("host", ["0.0.0.0", "", "10.1.2.3", "::", "taskline.example"])
@pytest.mark.parametrize("setting", ["console_host", "flower_host"])
def test_a_console_beyond_loopback_is_refused_unless_allowed(setting: str, host: str) -> None:
    (problem,) = production_problems(production(**{setting: host}))
    assert problem.startswith(f"TASKLINE_{setting.upper()} is ")
    assert "not a loopback address" in problem
    assert "TASKLINE_ALLOW_PUBLIC_CONSOLES=true" in problem
    assert production_problems(production(**{setting: host}, allow_public_consoles=True)) == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("", False),
        ("192.168.1.2", False),
        ("localhost.example", False),
    ],
)
def test_loopback_addresses(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
