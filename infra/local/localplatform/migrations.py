"""Numbered SQL migrations for the ad server's PostgreSQL database.

Files in infra/sql/migrations are named `NNNN_what_it_does.sql` and applied in version order,
each in its own transaction together with its row in `schema_migrations`, so a failing file
leaves nothing half-applied and is retried on the next run. An applied file is history: if its
checksum no longer matches, the runner refuses to do anything (a changed file would mean that
databases created before and after the change differ); write a new migration instead. The one
exception is a rewording of a released file's comments, listed in `REWORDED` with the checksum
it replaces and the checksum of its statements, which must stay the same.

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


@dataclass(frozen=True)
class Reworded:
    """A released file whose comments were reworded later, its statements untouched: databases
    that applied the `earlier` wording (its checksum) are accepted while the file's statements
    still hash to `statements`, and their record is brought up to the current wording."""

    earlier: str
    statements: str


# Comment-only rewrites of released files (2026-12-07: the comments named the original document
# by another name, and modules that have since moved). Never a change to a statement: that is a
# new migration. tests/unit/test_migration_history.py checks each entry against its file.
REWORDED: dict[int, Reworded] = {
    1: Reworded(
        earlier="a3d52a302e3fd1b926b22ca092fb3868fbb6654830802f20c8d458cb26e27893",
        statements="20d714f6f156b0f84cc74e798588a8d18f34cd9e79685c31c74eccdb4306aaba",
    ),
    2: Reworded(
        earlier="83710401fa0828810dbd43bd9b184c419c67bccb34c72875672f2825d6a41bab",
        statements="b7685ac7ea96c809f6ea77ef030bf00365fbd755c9474f13540b49123328e423",
    ),
    3: Reworded(
        earlier="42169b9274a695478995e7931c546c65c1b2e7c6860baf795383addbebaa1b4c",
        statements="01e23a782b49194c4bf3541ad5707a6ee6d7132f1a5f278eda21f702a7c10b8b",
    ),
    4: Reworded(
        earlier="bfb66c44f1d0152ecdfccfa3b2653acfdc1fcb6bcb581481368bf5bff9dabab2",
        statements="3a0347d49fe53fbb556f92f948623541417c387053b9ccb9363b1644ee5b4339",
    ),
    5: Reworded(
        earlier="2fb5961a26ff886575e01c3c888e627107d3482897f0859547b6e865d320ef1e",
        statements="657a313c02cbeb554287fdaceb6d660b06b7ebfea0c6b285c802e68a2c0b8879",
    ),
    6: Reworded(
        earlier="06380c035ef538129fc898e635af58277d89b7839adca729e62c14dafb8bbe66",
        statements="aca45152cb408db9c09af7a123e77e99af581f1e626765423e9c9398979bfaf6",
    ),
    8: Reworded(
        earlier="a5b6e68529a5b38457466f285bed72d32bd0edd6f04847f2e2ca7214fb1d6ae7",
        statements="fb31bde62464e4444c3a50aad5eefa7b8fa4cde2f490634927da520888d843c8",
    ),
}


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

    @property
    def statements_checksum(self) -> str:
        """sha256 of the file without its comment lines and blank lines: what a rewording of the
        comments leaves unchanged (a comment after a statement counts as the statement's)."""
        kept = (
            line
            for line in self.sql.splitlines()
            if line.strip() and not line.lstrip().startswith("--")
        )
        return hashlib.sha256("\n".join(kept).encode()).hexdigest()


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
        for version in _check_history(migrations, applied):
            conn.run(
                "UPDATE schema_migrations SET checksum = :c WHERE version = :v",
                c=next(m.checksum for m in migrations if m.version == version),
                v=version,
            )
        done = []
        for migration in migrations:
            if migration.version not in applied:
                _apply_one(conn, migration)
                done.append(migration.file_name)
        return done
    finally:
        conn.run("SELECT pg_advisory_unlock(:key)", key=_LOCK_KEY)


def _check_history(migrations: list[Migration], applied: dict[int, tuple[str, str]]) -> list[int]:
    """Raise if the history changed; return the versions applied in an earlier wording
    (`REWORDED`), whose recorded checksum is to be brought up to date."""
    by_version = {m.version: m for m in migrations}
    reworded = []
    for version, (name, checksum) in sorted(applied.items()):
        migration = by_version.get(version)
        if migration is None:
            raise MigrationError(
                f"migration {name} (version {version}) is applied but its file is missing"
            )
        if migration.checksum == checksum:
            continue
        earlier = REWORDED.get(version)
        if (
            earlier is not None
            and checksum == earlier.earlier
            and migration.statements_checksum == earlier.statements
        ):
            reworded.append(version)
        else:
            raise MigrationError(
                f"{migration.file_name} changed after it was applied (checksum "
                f"{migration.checksum[:12]} != recorded {checksum[:12]}); restore it and put "
                "the change in a new migration"
            )
    return reworded


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
