"""Settings are the one source of configuration: .env.example and supervisord come from them."""

import subprocess

import pytest
from pydantic import ValidationError

from taskline.core.settings import Settings, example, shell
from tests.support import ROOT


def test_env_example_is_generated_from_the_settings() -> None:
    assert (ROOT / ".env.example").read_text() == example()
    values = [line for line in example().splitlines() if line.startswith("TASKLINE_")]
    assert len(values) == len(Settings.model_fields)


def test_env_is_one_of_two_words_in_any_case() -> None:
    assert Settings(env="Production").env == "production"
    with pytest.raises(ValidationError):
        Settings(env="prod")


def test_the_retried_failures_a_record_keeps_are_bounded() -> None:
    assert Settings().retry_errors_kept == 10
    assert Settings(retry_errors_kept=1).retry_errors_kept == 1
    assert Settings(retry_errors_kept=100).retry_errors_kept == 100
    for refused in (0, -1, 101):
        with pytest.raises(ValidationError, match="retry_errors_kept"):
            Settings(retry_errors_kept=refused)


def test_the_shell_export_gives_every_value_back_unchanged() -> None:
    tricky = 'it\'s a "pass" word $HOME `x`'
    settings = Settings(console_password=tricky, services_autostart=True, api_port=8123)
    script = shell(settings) + 'printf "%s\\n%s\\n%s" "$TASKLINE_CONSOLE_PASSWORD" '
    script += '"$TASKLINE_SERVICES_AUTOSTART" "$TASKLINE_API_PORT"'
    out = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split("\n") == [tricky, "true", "8123"]


def test_supervisord_reads_only_settings_it_is_given() -> None:
    """Every TASKLINE_ variable supervisord.conf uses is a setting (or a launcher path)."""
    conf = (ROOT / "supervisord.conf").read_text()
    used = {part.split(")s")[0] for part in conf.split("%(ENV_TASKLINE_")[1:]}
    launcher = {"RUN_DIR", "PYTHON"}
    assert used - launcher <= {name.upper() for name in Settings.model_fields}
    assert used & {"CONSOLE_PASSWORD", "FLOWER_HOST", "SERVICES_AUTOSTART"}
