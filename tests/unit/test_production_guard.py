"""In production the API refuses development defaults."""

import pytest

from api.main import create_app
from core.settings import Settings, production_problems


def test_development_defaults_are_refused_in_production() -> None:
    settings = Settings(env="production")
    problems = production_problems(settings)
    assert len(problems) == 5
    with pytest.raises(RuntimeError, match="refusing to start in production"):
        create_app(settings)


def test_production_settings_pass() -> None:
    settings = Settings(
        env="production",
        broker_url="amqp://taskline:s3cret@rabbit:5672//",
        serial_secret="a" * 32,
        admin_password="b" * 20,
        flower_password="c" * 20,
        console_password="d" * 20,
    )
    assert production_problems(settings) == []
    assert create_app(settings).title == "Taskline"


def test_development_mode_allows_defaults() -> None:
    assert create_app(Settings(env="development")).title == "Taskline"
