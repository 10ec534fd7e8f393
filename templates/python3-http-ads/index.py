"""The whole runtime of a function: Flask routes every request to the function's `handle`.

The handler module only imports and defines; `start()` calls its `build()` once, before serving,
which connects, starts its threads and returns `handle`. The contract is the python3-http
template's: `handle(event, context)` gets the request as an Event and returns None (200, empty),
a dict with statusCode/body/headers, or anything Flask accepts. On top of it, three things every
one of our functions needs:

- `/_/ready` answers 200 once the handler is built and its optional `ready()` says so;
  of-watchdog's `ready_path` points here, so a replica counts as available only when its handler
  can really serve.
- Prometheus metrics of the function itself (request count and latency by status), on
  FUNCTION_METRICS_PORT (default 8000), beside the watchdog's own on 8081.
- An uncaught exception becomes the product's error body, never a stack trace to the client.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
import uuid
from urllib.parse import quote, urlsplit

from flask import Flask, Response, request
from function import handler
from prometheus_client import Counter, Histogram, start_http_server
from waitress import serve

app = Flask(__name__)

REQUESTS = Counter("function_requests_total", "Requests handled", ["method", "code"])
LATENCY = Histogram(
    "function_request_duration_seconds",
    "Time spent in handle()",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
METHODS = ["GET", "PUT", "POST", "PATCH", "DELETE", "OPTIONS"]  # the handler answers OPTIONS
HANDLE = "ads.handle"  # the built handler, in app.config


def start() -> None:
    """Build the function's handler once, at start-up: connect, start its threads. A handler
    module without `build` is a plain python3-http one (what `faas-cli new` writes): its
    `handle(event, context)` and optional `ready()` serve as they are."""
    build = getattr(handler, "build", None)
    app.config[HANDLE] = build() if build is not None else _PlainHandler()


class _PlainHandler:
    def __call__(self, event: object, context: object) -> object:
        return handler.handle(event, context)

    def ready(self) -> bool:
        check = getattr(handler, "ready", None)
        return True if check is None else bool(check())


class Event:
    def __init__(self) -> None:
        self.body = request.get_data()
        self.headers = request.headers
        self.method = request.method
        self.query = request.args
        self.path = request.path
        # As the caller sent it, still percent-encoded: routing on it keeps an encoded "/" or
        # "#" inside one path segment (waitress gives REQUEST_URI, werkzeug's server RAW_URI).
        raw = request.environ.get("REQUEST_URI") or request.environ.get("RAW_URI") or ""
        self.raw_path = urlsplit(raw).path or quote(request.path)


class Context:
    def __init__(self) -> None:
        self.hostname = os.environ.get("HOSTNAME", "localhost")


def _to_response(result: object) -> object:
    if result is None:
        return ("", 200)
    if not isinstance(result, dict):
        return result
    status = int(result.get("statusCode", 200))
    body = result.get("body", "")
    headers = result.get("headers") or {}
    if isinstance(body, (dict, list)):
        body = json.dumps(body, separators=(",", ":"))
        headers = {"Content-Type": "application/json", **dict(headers)}
    elif body is None:
        body = ""
    elif not isinstance(body, (str, bytes)):
        body = str(body)
    return Response(body, status=status, headers=headers)


@app.route("/_/ready", methods=["GET"])
def ready() -> tuple[str, int]:
    handle = app.config.get(HANDLE)
    check = getattr(handle, "ready", None)
    ok = handle is not None and (check is None or bool(check()))
    return ("OK", 200) if ok else ("not ready", 503)


@app.route("/", defaults={"path": ""}, methods=METHODS)
@app.route("/<path:path>", methods=METHODS)
def call_handler(path: str) -> object:
    started = time.perf_counter()
    try:
        response = app.make_response(_to_response(app.config[HANDLE](Event(), Context())))
    except Exception:  # the handler's own error mapping failed: answer, never crash
        app.logger.exception("unhandled error in handler")
        body = {"error": "INTERNAL", "message": "internal error", "requestId": _request_id()}
        response = Response(json.dumps(body), status=500, mimetype="application/json")
    LATENCY.observe(time.perf_counter() - started)
    REQUESTS.labels(request.method, str(response.status_code)).inc()
    return response


@app.errorhandler(405)
def unlisted_method(_error: Exception) -> object:
    """A method Flask does not route (TRACE, PROPFIND...) still reaches the handler, which
    answers with the methods the path really allows."""
    return call_handler(request.path)


def _not_printed_already(record: logging.LogRecord) -> bool:
    return not logging.getLogger(record.name).handlers


def _request_id() -> str:
    return request.headers.get("X-Call-Id") or str(uuid.uuid4())


if __name__ == "__main__":
    # One line per start goes to the log the watchdog collects: `faas-cli logs NAME` shows when
    # and where each replica started. The root handler skips records of loggers that print
    # their own (the functions' JSON loggers), or each of their lines would come twice.
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger().handlers[0].addFilter(_not_printed_already)
    # of-watchdog passes SIGTERM on at once, then drains its requests within write_timeout:
    # keep serving them; the watchdog's exit ends the replica (or the container).
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    start()
    start_http_server(int(os.environ.get("FUNCTION_METRICS_PORT", "8000")))
    serve(
        app,
        host="0.0.0.0",
        port=int(os.environ.get("FUNCTION_PORT", "5000")),
        threads=int(os.environ.get("WAITRESS_THREADS", "8")),
        ident=None,
    )
