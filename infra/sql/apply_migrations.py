"""Apply infra/sql/migrations to a PostgreSQL server: the migration image's entry point.

The same runner the local platform uses (localplatform.migrations), pointed at a server by
libpq's variable names, with the password read from a file (a Kubernetes or compose secret),
never from the environment. It waits for the server to accept connections, so a Job or a
compose service may start together with the database.

    PGHOST=db PGPORT=5432 PGDATABASE=adserver PGUSER=adserver \
    PGPASSWORD_FILE=/var/openfaas/secrets/postgres-password python infra/sql/apply_migrations.py
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pg8000.native

from localplatform import migrations

CONNECT_TIMEOUT_S = 120.0  # how long to wait for the server; MIGRATIONS_WAIT_S overrides


@dataclass(frozen=True)
class Target:
    host: str
    port: int
    database: str
    user: str
    password_file: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Target:
        """Every problem at once, as a SystemExit naming the variables."""
        missing = [
            name
            for name in ("PGHOST", "PGDATABASE", "PGUSER", "PGPASSWORD_FILE")
            if not env.get(name)
        ]
        port = env.get("PGPORT", "5432")
        problems = [f"{name} is not set" for name in missing]
        if not port.isdigit():
            problems.append(f"PGPORT={port!r} is not a port number")
        if problems:
            raise SystemExit("apply_migrations: " + "; ".join(problems))
        return cls(
            env["PGHOST"], int(port), env["PGDATABASE"], env["PGUSER"], Path(env["PGPASSWORD_FILE"])
        )

    def connect(self) -> pg8000.native.Connection:
        password = self.password_file.read_text().strip()
        return pg8000.native.Connection(
            self.user, password=password, host=self.host, port=self.port, database=self.database
        )


def connect_when_ready(
    target: Target, timeout_s: float = CONNECT_TIMEOUT_S
) -> pg8000.native.Connection:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return target.connect()
        except (OSError, pg8000.native.InterfaceError, pg8000.native.DatabaseError) as exc:
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"apply_migrations: {target.host}:{target.port} not reachable after "
                    f"{timeout_s:.0f}s: {exc}"
                ) from exc
            time.sleep(2)


def main() -> int:
    target = Target.from_env(os.environ)
    conn = connect_when_ready(target, float(os.environ.get("MIGRATIONS_WAIT_S", CONNECT_TIMEOUT_S)))
    try:
        applied = migrations.apply(conn)
    except migrations.MigrationError as exc:
        print(f"apply_migrations: {exc}", file=sys.stderr)
        return 1
    finally:
        conn.close()
    print(f"applied: {', '.join(applied)}" if applied else "schema up to date", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
