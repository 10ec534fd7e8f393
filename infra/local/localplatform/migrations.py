"""Numbered SQL migrations for the ad server's PostgreSQL database.

Files in infra/sql/migrations are named `NNNN_what_it_does.sql` and applied in version order,
each in its own transaction together with its row in `schema_migrations`, so a failing file
leaves nothing half-applied and is retried on the next run. An applied file is history: if its
checksum no longer matches, the runner refuses to do anything (a changed file would mean that
databases created before and after the change differ); write a new migration instead.

Example:
    >>> from localplatform.components.postgres import connect
    >>> apply(connect(profile))   # doctest: +SKIP
    ['0001_seed_schema.sql', '0002_money_at_micro_precision.sql', ...]
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import pg8000.native

from .profile import REPO_ROOT

MIGRATIONS_DIR = REPO_ROOT / "infra" / "sql" / "migrations"

# Serialises concurrent runners (two `make up`, parallel tests) on one database.
_LOCK_KEY = 0x4D494752  # "MIGR"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")

_CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
  version INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  checksum TEXT NOT NULL,
  applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """Migrations cannot be applied; the message names the file and what to do."""


@dataclass(frozen=True)
class Migration:
    version: int
    file_name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migration files in `directory`, in version order; misnamed or duplicate versions fail."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path}: expected a name like 0001_what_it_does.sql")
        version = int(match.group(1))
        if version in found:
            other = found[version].file_name
            raise MigrationError(f"{path}: version {version} is also used by {other}")
        found[version] = Migration(version, path.name, path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def apply(conn: pg8000.native.Connection, directory: Path = MIGRATIONS_DIR) -> list[str]:
    """Apply the pending migrations; return the file names applied now (empty when up to date).

    Raises MigrationError, before applying anything, if an applied file changed or vanished.
    """
    migrations = discover(directory)
    conn.run("SELECT pg_advisory_lock(:key)", key=_LOCK_KEY)
    try:
        conn.run(_CREATE_TABLE)
        applied = {
            version: (name, checksum)
            for version, name, checksum in conn.run(
                "SELECT version, name, checksum FROM schema_migrations"
            )
        }
        _check_history(migrations, applied)
        done = []
        for migration in migrations:
            if migration.version not in applied:
                _apply_one(conn, migration)
                done.append(migration.file_name)
        return done
    finally:
        conn.run("SELECT pg_advisory_unlock(:key)", key=_LOCK_KEY)


def _check_history(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> None:
    by_version = {m.version: m for m in migrations}
    for version, (name, checksum) in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"migration {name} (version {version}) is applied but its file is missing"
            )
        if migration.checksum != checksum:
            raise MigrationError(
                f"{migration.file_name} changed after it was applied (checksum "
                f"{migration.checksum[:12]} != recorded {checksum[:12]}); restore it and put "
                "the change in a new migration"
            )


def _apply_one(conn: pg8000.native.Connection, migration: Migration) -> None:
    conn.run("BEGIN")
    try:
        conn.run(migration.sql)  # no parameters: simple protocol, so several statements work
        conn.run(
            "INSERT INTO schema_migrations (version, name, checksum) VALUES (:v, :n, :c)",
            v=migration.version,
            n=migration.file_name,
            c=migration.checksum,
        )
        conn.run("COMMIT")
    except Exception as exc:
        conn.run("ROLLBACK")
        raise MigrationError(f"{migration.file_name} failed and was rolled back: {exc}") from exc
