"""Settings: declared once, read from environment and secret files, every problem at once."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pytest

from shared_layer.kernel.errors import InvalidSettings
from shared_layer.kernel.settings import (
    at_least,
    env,
    load_settings,
    min_length,
    one_of,
    positive,
    secret,
    settings_class,
)


@settings_class
class DemoSettings:
    redis_url: str = env("REDIS_URL")
    port: int = env("PORT", default=8080, check=positive)
    timeout_s: float = env("TIMEOUT_SECONDS", default=0.05, check=positive)
    debug: bool = env("DEBUG", default=False)
    floor: Decimal = env("FLOOR", default=Decimal("0"))
    mode: Literal["fast", "safe"] = env("MODE", default="safe")
    brokers: tuple[str, ...] = env("KAFKA_BROKERS", default=())
    log_level: str | None = env("LOG_LEVEL")
    data_dir: Path = env("DATA_DIR", default=Path("/srv/data"))
    click_key: bytes = secret("click-token-key", check=min_length(32))
    admin_token: str | None = secret("admin-token")


@pytest.fixture
def secrets_dir(tmp_path: Path) -> Path:
    (tmp_path / "click-token-key").write_bytes(b"k" * 32 + b"\n")
    return tmp_path


def test_reads_and_converts_every_declared_field(secrets_dir: Path) -> None:
    (secrets_dir / "admin-token").write_text("s3cret\n")
    loaded = load_settings(
        DemoSettings,
        environ={
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "PORT": "9000",
            "TIMEOUT_SECONDS": "0.2",
            "DEBUG": "yes",
            "FLOOR": "0.25",
            "MODE": "fast",
            "KAFKA_BROKERS": "a:9092, b:9092,",
            "DATA_DIR": "/var/data",
        },
        secrets_dir=secrets_dir,
    )
    assert loaded == DemoSettings(
        redis_url="redis://127.0.0.1:6379/0",
        port=9000,
        timeout_s=0.2,
        debug=True,
        floor=Decimal("0.25"),
        mode="fast",
        brokers=("a:9092", "b:9092"),
        log_level=None,
        data_dir=Path("/var/data"),
        click_key=b"k" * 32,
        admin_token="s3cret",  # noqa: S106 (a test value)
    )


def test_defaults_apply_when_unset_or_blank(secrets_dir: Path) -> None:
    loaded = load_settings(
        DemoSettings, environ={"REDIS_URL": "redis://r", "PORT": "  "}, secrets_dir=secrets_dir
    )
    assert (loaded.port, loaded.timeout_s, loaded.brokers, loaded.admin_token) == (
        8080,
        0.05,
        (),
        None,
    )


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "click-token-key").write_text("short")
    with pytest.raises(InvalidSettings) as caught:
        load_settings(
            DemoSettings,
            environ={"PORT": "eighty", "TIMEOUT_SECONDS": "-1", "DEBUG": "maybe", "MODE": "x"},
            secrets_dir=tmp_path,
        )
    assert caught.value.problems == (
        "REDIS_URL: required but is not set",
        "PORT: expected a whole number",
        "TIMEOUT_SECONDS: must be greater than 0",
        "DEBUG: expected true or false",
        "MODE: must be one of fast, safe",
        "secret 'click-token-key': must be at least 32 long",
    )


def test_a_missing_secret_names_the_directory_not_the_value(tmp_path: Path) -> None:
    with pytest.raises(InvalidSettings, match=f"secret 'click-token-key': .*{tmp_path}"):
        load_settings(DemoSettings, environ={"REDIS_URL": "redis://r"}, secrets_dir=tmp_path)


def test_secrets_dir_comes_from_openfaas_secrets_dir(secrets_dir: Path) -> None:
    loaded = load_settings(
        DemoSettings,
        environ={"REDIS_URL": "redis://r", "OPENFAAS_SECRETS_DIR": str(secrets_dir)},
    )
    assert loaded.click_key == b"k" * 32


def test_secrets_never_appear_in_repr(secrets_dir: Path) -> None:
    (secrets_dir / "admin-token").write_text("s3cret")
    loaded = load_settings(
        DemoSettings, environ={"REDIS_URL": "redis://r"}, secrets_dir=secrets_dir
    )
    assert "s3cret" not in repr(loaded) and "kkkk" not in repr(loaded)


def test_settings_are_frozen(secrets_dir: Path) -> None:
    loaded = load_settings(
        DemoSettings, environ={"REDIS_URL": "redis://r"}, secrets_dir=secrets_dir
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        loaded.port = 1  # type: ignore[misc]


def test_cross_field_problems_join_the_list() -> None:
    @settings_class
    class Deadlines:
        call_timeout_s: float = env("CALL_TIMEOUT_SECONDS", check=at_least(0.001))
        deadline_s: float = env("DEADLINE_SECONDS")

        def problems(self) -> list[str]:
            if self.call_timeout_s >= self.deadline_s:
                return ["CALL_TIMEOUT_SECONDS: must be shorter than DEADLINE_SECONDS"]
            return []

    with pytest.raises(InvalidSettings, match="must be shorter"):
        load_settings(Deadlines, environ={"CALL_TIMEOUT_SECONDS": "1", "DEADLINE_SECONDS": "0.5"})
    ok = load_settings(Deadlines, environ={"CALL_TIMEOUT_SECONDS": "0.1", "DEADLINE_SECONDS": "1"})
    assert ok.call_timeout_s == 0.1


@pytest.mark.parametrize(
    ("check", "value", "complaint"),
    [
        (positive, 0, "must be greater than 0"),
        (positive, 1, None),
        (at_least(2), 1.5, "must be at least 2"),
        (one_of("a", "b"), "c", "must be one of a, b"),
        (one_of("a", "b"), "a", None),
        (min_length(3), b"ab", "must be at least 3 long"),
    ],
)
def test_checks(check, value, complaint) -> None:  # type: ignore[no-untyped-def]
    assert check(value) == complaint


def test_fields_without_a_source_are_a_programming_error() -> None:
    @settings_class
    class Broken:
        name: str = "x"

    with pytest.raises(TypeError, match="without env"):
        load_settings(Broken, environ={})
