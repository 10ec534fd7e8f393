"""PostgreSQL 15: campaigns, ads, targeting rules and the exact daily metrics.

Runs Debian's server binaries as the `postgres` OS user (initdb and postgres refuse root) on
a cluster of its own under `<data>/postgres`: `pgdata/` is the cluster, `sockets/` its Unix
socket (inside the private data area, not /var/run, so two profiles never share one).
The application role `adserver` owns the database `adserver` and logs in over TCP with a
password generated once into `<secrets>/postgres-password`; the local socket uses peer
authentication, with root mapped to the `postgres` superuser so the platform can administer
the cluster without a superuser password.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import time
from pathlib import Path

import pg8000.native

from .. import migrations
from ..component import Command, Component, ComponentError
from ..profile import Profile
from ..secrets import ensure_secret
from ._addresses import bind_addresses

PG_BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"
DATABASE = "adserver"
ROLE = "adserver"
PASSWORD_SECRET = "postgres-password"  # noqa: S105 (a file name)
_IDENT_MAP = "localplatform"
_MAX_SOCKET_PATH = 107  # sun_path limit on Linux, including the terminating NUL


def password(profile: Profile) -> str:
    """The `adserver` role's password, generated on first use (file mode 0600)."""
    return ensure_secret(profile, PASSWORD_SECRET, nbytes=32).read_text().strip()


def connect(
    profile: Profile, *, database: str = DATABASE, timeout: float = 10.0
) -> pg8000.native.Connection:
    """A connection as `adserver` over TCP on 127.0.0.1, for tests and tools.

    pg8000 leaves Nagle's algorithm on, which makes each larger statement wait ~40 ms for a
    delayed ACK; the socket is therefore opened here with TCP_NODELAY.

    Example:
        >>> conn = connect(profile)  # doctest: +SKIP
        >>> conn.run("SELECT count(*) FROM campaigns")  # doctest: +SKIP
        [[0]]
    """
    sock = socket.create_connection(("127.0.0.1", profile.ports.postgres), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return pg8000.native.Connection(
            ROLE, password=password(profile), database=database, sock=sock, ssl_context=False
        )
    except BaseException:
        sock.close()
        raise


FALLBACK_ROOT = Path("/var/lib/adserver-local")


class Postgres(Component):
    name = "postgres"
    start_timeout_s = 60.0

    @property
    def area(self) -> Path:
        """Under the state dir, unless the `postgres` user cannot reach it there.

        PostgreSQL refuses to run as root, so its OS user must be able to enter every parent
        of its data directory; a checkout under a private home (mode 0700) does not allow that.
        Then the data lives under /var/lib/adserver-local/<hash of the state dir> instead, with a
        symlink in the state dir pointing at it, and `purge()` removes it with the state.
        """
        inside = self.profile.data_dir / self.name
        if inside.is_symlink():
            return inside.resolve()
        if _traversable(self.profile.data_dir, _os_user()):
            return inside
        digest = hashlib.sha256(str(self.profile.state_dir).encode()).hexdigest()[:12]
        return FALLBACK_ROOT / digest / self.name

    def purge(self) -> None:
        """Remove data kept outside the state directory (see `area`)."""
        link = self.profile.data_dir / self.name
        if link.is_symlink():
            target = link.resolve()
            shutil.rmtree(target, ignore_errors=True)
            with contextlib.suppress(OSError):
                target.parent.rmdir()
            link.unlink()

    @property
    def pgdata(self) -> Path:
        return self.area / "pgdata"

    @property
    def socket_dir(self) -> Path:
        return self.area / "sockets"

    def prepare(self) -> None:
        """Create the cluster once; rewrite the settings and access rules on every start."""
        try:
            user = pwd.getpwnam(OS_USER)
        except KeyError:
            raise ComponentError("postgres: no `postgres` OS user; install postgresql-15") from None
        self.profile.data_dir.mkdir(parents=True, exist_ok=True)
        area = self.area
        if area.parent != self.profile.data_dir:
            for d in (FALLBACK_ROOT, area.parent):
                d.mkdir(exist_ok=True, mode=0o711)
                d.chmod(0o711)
            link = self.profile.data_dir / self.name
            if not link.is_symlink():
                link.symlink_to(area)
        _require_traversable(area.parent, user)
        socket_path = self.socket_dir / f".s.PGSQL.{self.profile.ports.postgres}"
        if len(str(socket_path)) >= _MAX_SOCKET_PATH:
            raise ComponentError(f"postgres: socket path too long for Linux: {socket_path}")
        for d in (self.area, self.socket_dir):
            d.mkdir(exist_ok=True)
            os.chown(d, user.pw_uid, user.pw_gid)
            d.chmod(0o700)
        if not (self.pgdata / "PG_VERSION").exists():
            self._initdb()
        conf = self.pgdata / "postgresql.conf"
        include = "include_if_exists = 'localplatform.conf'"
        if include not in conf.read_text():
            with conf.open("a") as f:
                f.write(
                    f"\n# The local platform's settings, rewritten on every start.\n{include}\n"
                )
        self._write("localplatform.conf", self._settings(), user)
        self._write("pg_hba.conf", self._hba(), user)
        self._write("pg_ident.conf", self._ident(), user)
        password(self.profile)

    def _initdb(self) -> None:
        argv = [str(PG_BIN / "initdb"), "-D", str(self.pgdata), "-U", OS_USER, "-E", "UTF8"]
        argv += ["--locale=C.UTF-8", "--auth-local=peer", "--auth-host=scram-sha-256"]
        done = subprocess.run(_as_os_user(argv), cwd=self.area, capture_output=True, text=True)
        if done.returncode != 0:
            raise ComponentError(f"postgres: initdb failed:\n{done.stdout}{done.stderr}")

    def _settings(self) -> str:
        return "\n".join(
            [
                "# Generated by localplatform (components/postgres.py); do not edit.",
                f"listen_addresses = '{','.join(bind_addresses(self.profile))}'",
                f"port = {self.profile.ports.postgres}",
                f"unix_socket_directories = '{self.socket_dir}'",
                "password_encryption = 'scram-sha-256'",
                "timezone = 'UTC'",  # the specification's TIMESTAMP columns hold UTC
                "log_timezone = 'UTC'",
                "max_connections = 200",  # many function replicas, each with a small pool
                "shared_buffers = '256MB'",
                "",
            ]
        )

    def _hba(self) -> str:
        return "\n".join(
            [
                "# Generated by localplatform (components/postgres.py); do not edit.",
                "# TYPE  DATABASE  USER  ADDRESS  METHOD",
                f"local   all       all            peer map={_IDENT_MAP}",
                "host    all       all   127.0.0.1/32  scram-sha-256",
                f"host    all       all   {self.profile.bridge_cidr}  scram-sha-256",
                "",
            ]
        )

    def _ident(self) -> str:
        # root (the platform) may act as the superuser; every other OS user as itself.
        return "\n".join(
            [
                "# Generated by localplatform (components/postgres.py); do not edit.",
                f"{_IDENT_MAP}  root      {OS_USER}",
                f"{_IDENT_MAP}  /^(.*)$   \\1",
                "",
            ]
        )

    def _write(self, name: str, text: str, user: pwd.struct_passwd) -> None:
        path = self.pgdata / name
        path.write_text(text)
        os.chown(path, user.pw_uid, user.pw_gid)
        path.chmod(0o600)

    def requires(self) -> tuple[str, ...]:
        return ("setpriv", *(str(PG_BIN / p) for p in ("initdb", "postgres", "pg_isready")))

    def command(self) -> Command:
        return Command(
            _as_os_user([str(PG_BIN / "postgres"), "-D", str(self.pgdata)]), cwd=self.area
        )

    def healthy(self) -> bool:
        argv = [str(PG_BIN / "pg_isready"), "-q", "-t", "2", "-h", "127.0.0.1"]
        argv += ["-p", str(self.profile.ports.postgres)]
        return subprocess.run(argv, check=False).returncode == 0

    def address(self) -> str:
        return f"postgresql://{ROLE}@127.0.0.1:{self.profile.ports.postgres}/{DATABASE}"

    def after_start(self) -> None:
        """Create the role (its password kept equal to the secret file), database and schema."""
        admin = pg8000.native.Connection(
            OS_USER,
            unix_sock=str(self.socket_dir / f".s.PGSQL.{self.profile.ports.postgres}"),
            database="postgres",
        )
        try:
            secret = pg8000.native.literal(password(self.profile))
            exists = admin.run("SELECT 1 FROM pg_roles WHERE rolname = :r", r=ROLE)
            verb = "ALTER" if exists else "CREATE"
            admin.run(f"{verb} ROLE {ROLE} WITH LOGIN PASSWORD {secret}")
            if not admin.run("SELECT 1 FROM pg_database WHERE datname = :d", d=DATABASE):
                admin.run(f"CREATE DATABASE {DATABASE} OWNER {ROLE}")
        finally:
            admin.close()
        conn = connect(self.profile)
        try:
            migrations.apply(conn)
        finally:
            conn.close()

    def stop(self, timeout_s: float = 20.0) -> bool:
        """Fast shutdown first (SIGINT to the postmaster: disconnect clients, checkpoint, exit).

        The base class's SIGTERM is PostgreSQL's "smart" shutdown, which waits for every client
        (function replicas keep pooled connections) and would end in SIGKILL and crash recovery.
        """
        pid = self.pid()
        if pid is not None:
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and self.running():
                time.sleep(0.1)
        return super().stop(timeout_s) or pid is not None


def _as_os_user(argv: list[str]) -> list[str]:
    """argv run as `postgres` with its own groups.

    Command(user=...) (Popen's `user`) changes only the uid: the server would keep root's
    group and supplementary groups, so root-group directories would be judged by their group
    bits (often none) and the server could read root-group files. setpriv sets uid, gid and
    groups, then execs, so the recorded pid is the postmaster's.
    """
    return ["setpriv", f"--reuid={OS_USER}", f"--regid={OS_USER}", "--init-groups", "--", *argv]


def _os_user() -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(OS_USER)
    except KeyError:
        return None


def _traversable(path: Path, user: pwd.struct_passwd | None) -> bool:
    if user is None:
        return True  # prepare() reports the missing user
    try:
        _require_traversable(path, user)
    except ComponentError:
        return False
    return True


def _require_traversable(path: Path, user: pwd.struct_passwd) -> None:
    """Fail clearly if `user` cannot reach `path`: initdb would fail with an obscure error."""
    groups = set(os.getgrouplist(user.pw_name, user.pw_gid))
    for d in [path, *path.parents]:
        st = d.stat()
        if st.st_uid == user.pw_uid:
            bit = stat.S_IXUSR
        elif st.st_gid in groups:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            raise ComponentError(
                f"postgres: the OS user {user.pw_name!r} cannot enter {d} (mode "
                f"{stat.filemode(st.st_mode)}), so it cannot reach the data directory {path}; "
                f"allow it (e.g. chmod o+x {d}) or choose a state directory elsewhere"
            )
