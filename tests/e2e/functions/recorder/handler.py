"""Test-only function: records every invocation the Kafka connector makes, in Redis.

Each call appends one JSON document to the Redis list `recorder:{function}:{topic}:calls`:
`{"ok", "headers" (the X-* and Content-Type headers), "body"}`. Setting the key
`recorder:{function}:{topic}:fail` to a fraction (0 to 1) makes that share of calls answer 500
(they are recorded too, with "ok": false), so tests can drive retries and dead letters.

It uses a few lines of RESP instead of the redis package on purpose: its image is built by
the tests inside the test platform's network namespace, offline, where only the template's
pinned wheels are in the cache.
"""

from __future__ import annotations

import json
import os
import random
import socket
import threading
from urllib.parse import urlsplit

FUNCTION = os.environ.get("OPENFAAS_NAME", "recorder")
_local = threading.local()


class _Redis:
    """Just enough of the Redis protocol for GET and RPUSH, one connection per thread."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._addr = (parts.hostname or "127.0.0.1", parts.port or 6379)
        self._db = (parts.path or "/0").strip("/") or "0"
        self._sock: socket.socket | None = None
        self._file = None

    def command(self, *args: str | bytes) -> object:
        for attempt in (1, 2):
            try:
                if self._sock is None:
                    self._connect()
                self._sock.sendall(_encode(args))
                return self._read()
            except OSError:
                self._sock = None
                if attempt == 2:
                    raise
        return None

    def _connect(self) -> None:
        self._sock = socket.create_connection(self._addr, timeout=5)
        self._file = self._sock.makefile("rb")
        if self._db != "0":
            self._sock.sendall(_encode(("SELECT", self._db)))
            self._read()

    def _read(self) -> object:
        line = self._file.readline()
        if not line:
            raise OSError("redis closed the connection")
        kind, rest = line[:1], line[1:-2]
        if kind in (b"+", b":"):
            return rest
        if kind == b"-":
            raise RuntimeError(rest.decode())
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._file.read(n + 2)[:-2]
        raise RuntimeError(f"unexpected redis reply {line!r}")


def _encode(args: tuple) -> bytes:
    out = [f"*{len(args)}\r\n".encode()]
    for a in args:
        b = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(b), b))
    return b"".join(out)


def _redis() -> _Redis:
    client = getattr(_local, "redis", None)
    if client is None:
        client = _local.redis = _Redis(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return client


def handle(event, context):
    topic = event.headers.get("X-Topic", "")
    prefix = f"recorder:{FUNCTION}:{topic}"
    r = _redis()
    fail_share = float((r.command("GET", f"{prefix}:fail") or b"0").decode() or 0)
    ok = random.random() >= fail_share
    headers = {k: v for k, v in event.headers.items() if k.startswith("X-") or k == "Content-Type"}
    doc = {"ok": ok, "headers": headers, "body": event.body.decode("utf-8", "replace")}
    r.command("RPUSH", f"{prefix}:calls", json.dumps(doc))
    if not ok:
        return {"statusCode": 500, "body": {"error": "INJECTED", "message": "told to fail"}}
    return {"statusCode": 200, "body": "recorded"}
