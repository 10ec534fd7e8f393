"""Typed, frozen settings per component, read once from the environment and secret files.

Why one place: a function that reads ``os.environ`` deep in its code fails on the first request
that reaches that code, one problem at a time. Here each function declares its settings as a
small frozen dataclass; `load_settings` reads them all at start-up, checks every field, and raises
ONE `InvalidSettings` that lists every problem, so a bad deployment fails fast and completely.
Nothing else in the product reads ``os.environ``.

Secrets are OpenFaaS secrets: files under ``/var/openfaas/secrets/<name>``; the directory can be
moved with the environment variable ``OPENFAAS_SECRETS_DIR`` for local runs. Secret values are
never put in error messages or in the settings' repr.

Example::

    @settings_class
    class BidSettings:
        redis_url: str = env("REDIS_URL", default="redis://127.0.0.1:6379/0")
        snapshot_ttl_seconds: float = env("CAMPAIGN_SNAPSHOT_TTL_SECONDS", default=300.0,
                                          check=positive)
        click_token_key: bytes = secret("click-token-key", check=min_length(32))

    settings = load_settings(BidSettings)   # once, in the handler's build()

Supported field types: str, int, float, bool, bytes, Decimal, Path, Literal[...],
tuple[str, ...] (comma-separated) and ``X | None`` of those (unset means None).
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Literal, TypeVar

from shared_layer.kernel.errors import InvalidSettings

__all__ = [
    "DEFAULT_SECRETS_DIR",
    "SECRETS_DIR_VARIABLE",
    "at_least",
    "ends_with",
    "env",
    "iso_date",
    "load_settings",
    "min_length",
    "one_of",
    "positive",
    "secret",
    "settings_class",
]

DEFAULT_SECRETS_DIR = "/var/openfaas/secrets"
SECRETS_DIR_VARIABLE = "OPENFAAS_SECRETS_DIR"

Check = Callable[[Any], str | None]
"""A check returns None when the value is fine, otherwise what is wrong with it."""

T = TypeVar("T")

_SOURCE_KEY = "shared_layer.kernel.settings.source"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class _Source:
    kind: Literal["env", "secret"]
    name: str
    check: Check | None


def settings_class(cls: type[T]) -> type[T]:
    """Make `cls` a frozen, keyword-only dataclass: settings cannot change after start-up."""
    return dataclass(frozen=True, kw_only=True)(cls)


def env(name: str, *, default: Any = dataclasses.MISSING, check: Check | None = None) -> Any:
    """Declare a field read from the environment variable `name` (required without `default`)."""
    return dataclasses.field(default=default, metadata={_SOURCE_KEY: _Source("env", name, check)})


def secret(name: str, *, default: Any = dataclasses.MISSING, check: Check | None = None) -> Any:
    """Declare a field read from the secret file `<secrets dir>/<name>` (kept out of repr).

    Surrounding whitespace (the newline `echo` leaves) is stripped.
    """
    return dataclasses.field(
        default=default, repr=False, metadata={_SOURCE_KEY: _Source("secret", name, check)}
    )


def load_settings(
    cls: type[T],
    *,
    environ: Mapping[str, str] | None = None,
    secrets_dir: str | Path | None = None,
) -> T:
    """Read, convert and check every field of `cls`; raise one InvalidSettings listing all problems.

    `environ` defaults to the process environment, `secrets_dir` to ``$OPENFAAS_SECRETS_DIR`` or
    ``/var/openfaas/secrets``; tests pass both explicitly.

    >>> @settings_class
    ... class Demo:
    ...     port: int = env("PORT", default=8080, check=positive)
    >>> load_settings(Demo, environ={"PORT": "9000"}).port
    9000
    """
    environment = os.environ if environ is None else environ
    directory = Path(
        secrets_dir
        if secrets_dir is not None
        else environment.get(SECRETS_DIR_VARIABLE, DEFAULT_SECRETS_DIR)
    )
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    problems: list[str] = []
    for field in dataclasses.fields(cls):  # type: ignore[arg-type]
        source = field.metadata.get(_SOURCE_KEY)
        if source is None:
            raise TypeError(f"{cls.__name__}.{field.name} is declared without env() or secret()")
        try:
            values[field.name] = _read_field(
                source, field, hints[field.name], environment, directory
            )
        except _Problem as problem:
            problems.append(str(problem))
    if problems:
        raise InvalidSettings(problems)
    loaded = cls(**values)
    cross_checks = getattr(loaded, "problems", None)
    if callable(cross_checks):
        problems.extend(cross_checks())
    if problems:
        raise InvalidSettings(problems)
    return loaded


# Checks to pass as `check=`.
def positive(value: float | int | Decimal) -> str | None:
    return None if value > 0 else "must be greater than 0"


def at_least(minimum: float) -> Check:
    def check(value: float) -> str | None:
        return None if value >= minimum else f"must be at least {minimum}"

    return check


def one_of(*choices: object) -> Check:
    def check(value: object) -> str | None:
        return None if value in choices else f"must be one of {', '.join(map(str, choices))}"

    return check


def ends_with(suffix: str) -> Check:
    """Empty, or ending with `suffix` (a key prefix that names a folder: "exports/")."""

    def check(value: str) -> str | None:
        return None if value == "" or value.endswith(suffix) else f"must end with {suffix!r}"

    return check


def iso_date(value: str) -> str | None:
    try:
        date.fromisoformat(value)
    except ValueError:
        return "must be a date, YYYY-MM-DD"
    return None


def min_length(minimum: int) -> Check:
    def check(value: str | bytes) -> str | None:
        return None if len(value) >= minimum else f"must be at least {minimum} long"

    return check


class _Problem(Exception):
    pass


def _read_field(
    source: _Source,
    field: dataclasses.Field[Any],
    annotation: Any,
    environment: Mapping[str, str],
    directory: Path,
) -> Any:
    label = source.name if source.kind == "env" else f"secret {source.name!r}"
    raw: str | bytes | None
    if source.kind == "env":
        raw = environment.get(source.name)
        if raw is not None and raw.strip() == "":
            raw = None
    else:
        raw = _read_secret(directory, source.name, label)
    optional, inner = _unwrap_optional(annotation)
    if raw is None:
        if field.default is not dataclasses.MISSING:
            return field.default
        if optional:
            return None
        where = "is not set" if source.kind == "env" else f"is missing from {directory}"
        raise _Problem(f"{label}: required but {where}")
    value = _convert(raw, inner, label)
    if source.check is not None:
        complaint = source.check(value)
        if complaint:
            raise _Problem(f"{label}: {complaint}")
    return value


def _read_secret(directory: Path, name: str, label: str) -> bytes | None:
    if "/" in name or name in {"", ".", ".."}:
        raise _Problem(f"{label}: not a valid secret name")
    try:
        data = (directory / name).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _Problem(f"{label}: cannot be read ({exc.strerror})") from exc
    data = data.strip()
    return data or None


def _unwrap_optional(annotation: Any) -> tuple[bool, Any]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(members) == 1:
            return True, members[0]
    return False, annotation


def _convert(raw: str | bytes, annotation: Any, label: str) -> Any:
    if annotation is bytes:
        return raw if isinstance(raw, bytes) else raw.encode()
    try:
        text = raw.decode() if isinstance(raw, bytes) else raw
    except UnicodeDecodeError as exc:
        raise _Problem(f"{label}: is not UTF-8 text") from exc
    origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = typing.get_args(annotation)
        if text not in choices:
            raise _Problem(f"{label}: must be one of {', '.join(map(str, choices))}")
        return text
    if origin is tuple:
        return tuple(item.strip() for item in text.split(",") if item.strip())
    converter = _CONVERTERS.get(annotation)
    if converter is None:
        raise TypeError(f"settings fields of type {annotation!r} are not supported")
    return converter(text.strip(), label)


def _to_int(text: str, label: str) -> int:
    try:
        return int(text)
    except ValueError as exc:
        raise _Problem(f"{label}: expected a whole number") from exc


def _to_float(text: str, label: str) -> float:
    try:
        return float(text)
    except ValueError as exc:
        raise _Problem(f"{label}: expected a number") from exc


def _to_decimal(text: str, label: str) -> Decimal:
    try:
        return Decimal(text)
    except InvalidOperation as exc:
        raise _Problem(f"{label}: expected a decimal number") from exc


def _to_bool(text: str, label: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _Problem(f"{label}: expected true or false")


_CONVERTERS: dict[Any, Callable[[str, str], Any]] = {
    str: lambda text, _label: text,
    int: _to_int,
    float: _to_float,
    bool: _to_bool,
    Decimal: _to_decimal,
    Path: lambda text, _label: Path(text),
}
