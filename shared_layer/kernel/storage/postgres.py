"""PostgreSQL access: a small, bounded, thread-safe pool of pg8000 connections.

Why our own pool: pg8000 has none, and a function replica needs only a handful of connections
(waitress serves a few threads; PostgreSQL allows ``max_connections`` for every replica of every
function together). A broken connection is thrown away and a new one opened on the next checkout,
so a PostgreSQL restart costs the requests in flight at that moment, not the replica.

Why our own socket: pg8000 leaves Nagle's algorithm on, and every larger statement then waits
~40 ms for a delayed ACK (TOOLING.md). Sockets are opened here with TCP_NODELAY and handed to
pg8000 (``sock=``).

Errors: driver errors never leave this module raw. Cannot connect or the connection broke:
`UpstreamUnavailable` (503, worth retrying). A unique-key violation: `Conflict` (409). Anything
else the server refused: `UpstreamFailed` (502). Always ``raise ... from exc``. The SQL text and
the password never appear in a message.

SQL is parameterised only (pg8000's ``:name`` placeholders); nothing is formatted into a statement.

A statement that runs for every batch of a hot path goes through `run_prepared`: a named
prepared statement per connection, made on its first use, so that PostgreSQL parses and plans
it once per connection instead of once per call, and pg8000 translates its placeholders once
(for daily-metrics' batch statement that translation alone was a tenth of the function's CPU).

Example::

    db = Database.from_url("postgresql://adserver@127.0.0.1:5432/adserver", password=secret)
    with db.transaction() as conn:
        conn.run("UPDATE campaigns SET status = :s WHERE id = CAST(:id AS uuid)", s="paused", id=i)
    rows = db.run("SELECT count(*) FROM campaigns")      # one statement, autocommit
"""

from __future__ import annotations

import queue
import socket
import threading
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import pg8000.native
from pg8000 import exceptions as pg_errors

from shared_layer.kernel.errors import (
    Conflict,
    InvalidSettings,
    UpstreamFailed,
    UpstreamUnavailable,
)

__all__ = [
    "DEFAULT_POOL_SIZE",
    "ConnectionParams",
    "Database",
    "parse_database_url",
    "run_prepared",
]

DEFAULT_POOL_SIZE: Final = 8
_CHECKOUT_TIMEOUT_S: Final = 5.0
_PING_AFTER_IDLE_S: Final = 10.0
_UNIQUE_VIOLATION: Final = "23505"
# SQLSTATE classes meaning "the connection or the server is going away": retry later.
_UNAVAILABLE_CLASSES: Final = ("08", "57", "53")


@dataclass(frozen=True)
class ConnectionParams:
    """Where and as whom to connect; `password` is kept out of repr."""

    host: str
    port: int
    database: str
    user: str
    password: str | None = None
    connect_timeout_s: float = 5.0
    statement_timeout_ms: int = 10_000

    def __repr__(self) -> str:
        return (
            f"ConnectionParams(host={self.host!r}, port={self.port}, "
            f"database={self.database!r}, user={self.user!r})"
        )


def parse_database_url(url: str, *, password: str | None = None) -> ConnectionParams:
    """``postgresql://user[:password]@host[:port]/database`` into ConnectionParams.

    `password` (from the OpenFaaS secret) wins over one in the URL. Raises InvalidSettings.

    >>> parse_database_url("postgresql://adserver@10.62.0.1:5432/adserver").host
    '10.62.0.1'
    """
    parts = urlsplit(url)
    problems = []
    if parts.scheme not in ("postgresql", "postgres"):
        problems.append("DATABASE_URL: must start with postgresql://")
    if not parts.hostname:
        problems.append("DATABASE_URL: has no host")
    if not parts.username:
        problems.append("DATABASE_URL: has no user")
    database = parts.path.lstrip("/")
    if not database:
        problems.append("DATABASE_URL: has no database name")
    try:
        port = parts.port or 5432
    except ValueError:
        problems.append("DATABASE_URL: the port is not a number")
        port = 5432
    if problems:
        raise InvalidSettings(problems)
    return ConnectionParams(
        host=str(parts.hostname),
        port=port,
        database=unquote(database),
        user=unquote(str(parts.username)),
        password=password if password is not None else unquote(parts.password or "") or None,
    )


class _Pooled:
    __slots__ = ("connection", "last_used")

    def __init__(self, connection: pg8000.native.Connection) -> None:
        self.connection = connection
        self.last_used = time.monotonic()


class Database:
    """A bounded pool of connections to one database; share one per process.

    At most `size` connections exist; a checkout waits up to `checkout_timeout_s` for one, then
    raises UpstreamUnavailable rather than queue requests without bound.
    """

    def __init__(
        self,
        params: ConnectionParams,
        *,
        size: int = DEFAULT_POOL_SIZE,
        checkout_timeout_s: float = _CHECKOUT_TIMEOUT_S,
    ) -> None:
        if size < 1:
            raise ValueError("a pool needs at least one connection")
        self.params = params
        self._idle: queue.LifoQueue[_Pooled] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._checkout_timeout_s = checkout_timeout_s
        self._closed = False

    @classmethod
    def from_url(
        cls, url: str, *, password: str | None = None, size: int = DEFAULT_POOL_SIZE
    ) -> Database:
        return cls(parse_database_url(url, password=password), size=size)

    @contextmanager
    def connection(self) -> Iterator[pg8000.native.Connection]:
        """A connection for the duration of the block (autocommit: each statement commits)."""
        if not self._slots.acquire(timeout=self._checkout_timeout_s):
            raise UpstreamUnavailable("database busy: no pooled connection became free in time")
        pooled: _Pooled | None = None
        try:
            pooled = self._checkout()
            yield pooled.connection
        except (pg_errors.InterfaceError, OSError) as exc:
            self._discard(pooled)
            pooled = None
            raise UpstreamUnavailable("database connection lost") from exc
        except pg_errors.DatabaseError as exc:
            if _sqlstate(exc).startswith(_UNAVAILABLE_CLASSES):
                self._discard(pooled)
                pooled = None
            raise _wrap(exc) from exc
        finally:
            if pooled is not None:
                pooled.last_used = time.monotonic()
                self._idle.put(pooled)
            self._slots.release()

    @contextmanager
    def transaction(self, *, read_only: bool = False) -> Iterator[pg8000.native.Connection]:
        """One transaction: committed when the block ends, rolled back if it raises.

        `read_only`: a REPEATABLE READ, READ ONLY transaction, so that several SELECTs see one
        consistent state of the database (a campaign with its rules and ads).

        >>> with db.transaction() as conn:  # doctest: +SKIP
        ...     conn.run("INSERT INTO ...", ...)
        """
        with self.connection() as conn:
            conn.run("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" if read_only else "BEGIN")
            try:
                yield conn
            except BaseException:
                try:
                    conn.run("ROLLBACK")
                except (pg_errors.Error, OSError):
                    pass  # the connection is broken; connection() discards it
                raise
            conn.run("COMMIT")

    def run(self, sql: str, **params: Any) -> list[list[Any]]:
        """One statement in autocommit mode; returns its rows."""
        with self.connection() as conn:
            return conn.run(sql, **params) or []

    def close(self) -> None:
        """Close the idle connections (those checked out close when returned to a closed pool)."""
        self._closed = True
        while True:
            try:
                pooled = self._idle.get_nowait()
            except queue.Empty:
                return
            _close_quietly(pooled.connection)

    def _checkout(self) -> _Pooled:
        while True:
            try:
                pooled = self._idle.get_nowait()
            except queue.Empty:
                return _Pooled(self._open())
            if time.monotonic() - pooled.last_used < _PING_AFTER_IDLE_S:
                return pooled
            try:  # idle for a while: PostgreSQL may have restarted since
                pooled.connection.run("SELECT 1")
                return pooled
            except (pg_errors.Error, OSError):
                _close_quietly(pooled.connection)

    def _open(self) -> pg8000.native.Connection:
        p = self.params
        try:
            sock = socket.create_connection((p.host, p.port), timeout=p.connect_timeout_s)
        except OSError as exc:
            raise UpstreamUnavailable(
                f"database unreachable at {p.host}:{p.port}: {exc.strerror or exc}"
            ) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            conn = pg8000.native.Connection(
                p.user,
                password=p.password,
                database=p.database,
                sock=sock,
                ssl_context=False,
                timeout=p.connect_timeout_s + p.statement_timeout_ms / 1000,
                application_name="adserver",
            )
            conn.run(f"SET statement_timeout = {int(p.statement_timeout_ms)}")
            conn.run("SET TIME ZONE 'UTC'")
        except pg_errors.DatabaseError as exc:
            sock.close()
            raise UpstreamUnavailable(
                f"database refused the connection ({_sqlstate(exc)})"
            ) from exc
        except (pg_errors.InterfaceError, OSError) as exc:
            sock.close()
            raise UpstreamUnavailable("database connection failed") from exc
        return conn

    def _discard(self, pooled: _Pooled | None) -> None:
        if pooled is not None:
            _close_quietly(pooled.connection)


_PREPARED: weakref.WeakKeyDictionary[
    pg8000.native.Connection, dict[str, pg8000.native.PreparedStatement]
] = weakref.WeakKeyDictionary()
_PREPARED_LOCK = threading.Lock()


def run_prepared(conn: pg8000.native.Connection, sql: str, **params: Any) -> list[list[Any]]:
    """``conn.run(sql, **params)`` as `conn`'s named prepared statement for `sql`, prepared on
    first use and kept for the connection's life (a connection serves one thread at a time, and
    PostgreSQL plans it again by itself after DDL on its tables, such as a new partition)."""
    statements = _PREPARED.get(conn)
    if statements is None:
        with _PREPARED_LOCK:
            statements = _PREPARED.setdefault(conn, {})
    statement = statements.get(sql)
    if statement is None:
        statement = statements[sql] = conn.prepare(sql)
    return statement.run(**params) or []


def _sqlstate(exc: pg_errors.DatabaseError) -> str:
    detail = exc.args[0] if exc.args else None
    return str(detail.get("C", "")) if isinstance(detail, dict) else ""


def _wrap(exc: pg_errors.DatabaseError) -> Exception:
    code = _sqlstate(exc)
    if code == _UNIQUE_VIOLATION:
        detail = exc.args[0].get("D", "") if isinstance(exc.args[0], dict) else ""
        return Conflict(f"already exists: {detail}" if detail else "a record already exists")
    if code.startswith(_UNAVAILABLE_CLASSES):
        return UpstreamUnavailable(f"database unavailable ({code})")
    return UpstreamFailed(f"database error ({code or 'unknown'})")


def _close_quietly(conn: pg8000.native.Connection) -> None:
    try:
        conn.close()
    except (pg_errors.Error, OSError):
        pass
