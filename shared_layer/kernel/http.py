"""The edge of every function: request ids, W3C trace context, routing, JSON and error bodies.

A handler module stays thin: it declares routes, and each route turns a `Request` into a
response dict (the python3-http template's `statusCode`/`body`/`headers`). Everything a route
raises goes through `errors.http_error` here, once, so every 4xx/5xx body is
``{"error", "message", "requestId"}`` and nothing internal leaks. One JSON log line per request
(Powertools Logger) carries the request id and the trace id.

Example::

    router = Router()

    @router.route("GET", "/campaigns/{campaign_id}")
    def get_campaign(request: Request, campaign_id: str) -> dict:
        return json_response(200, {"id": campaign_id}, request)

    def build(settings=None) -> Handler:            # handler.py: wired once, at start-up
        return router.handler(service="campaigns")
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote

from aws_lambda_powertools import Logger

from shared_layer.kernel.correlation import TRACEPARENT_PATTERN, is_request_id
from shared_layer.kernel.errors import (
    Forbidden,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    TooManyRequests,
    Unauthorized,
    http_error,
)
from shared_layer.kernel.log import get_logger
from shared_layer.kernel.metrics import UNMATCHED_ROUTE, observe_request

__all__ = [
    "MAX_BODY_BYTES",
    "Handler",
    "Request",
    "Router",
    "json_response",
    "no_content",
    "request_from_event",
    "require_bearer",
]

MAX_BODY_BYTES = 1_048_576

Response = dict[str, Any]
Route = Callable[..., Response]


def _always_ready() -> bool:
    return True


@dataclass(frozen=True)
class Handler:
    """What a function's `build(settings)` returns: the template's `handle(event, context)`, and
    the readiness check its `/_/ready` answers with."""

    handle: Callable[[Any, Any], Response]
    ready: Callable[[], bool] = _always_ready

    def __call__(self, event: Any, context: Any) -> Response:
        return self.handle(event, context)


@dataclass(frozen=True)
class Request:
    """What a route sees of an invocation, with the ids it must propagate."""

    method: str
    path: str  # as the caller sent it, still percent-encoded: what routing matches
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    request_id: str
    trace_id: str
    traceparent: str  # to send on downstream calls: our trace id, a new span id
    started: float = field(default_factory=time.perf_counter)
    # Every value of a repeated query parameter (``slot=a:p-1&slot=b:p-2``); `query` has the first.
    query_lists: Mapping[str, list[str]] = field(default_factory=dict)
    log_fields: dict[str, Any] = field(default_factory=dict)

    def annotate(self, **fields: Any) -> None:
        """Add fields to this request's log line (for example the ad's correlation id)."""
        self.log_fields.update(fields)

    def header(self, name: str, default: str = "") -> str:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        """The body as JSON, or a 400 that says why it is not."""
        from shared_layer.kernel.errors import ValidationFailed

        try:
            return json.loads(self.body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValidationFailed(f"request body is not valid JSON: {exc}") from exc


def request_from_event(event: Any, max_body_bytes: int = MAX_BODY_BYTES) -> Request:
    """Build a Request from the template's event; enforces the body size limit."""
    headers = {k.lower(): v for k, v in dict(event.headers).items()}
    incoming = headers.get("x-request-id", "") or headers.get("x-call-id", "")
    request_id = incoming if is_request_id(incoming) else str(uuid.uuid4())
    match = TRACEPARENT_PATTERN.fullmatch(headers.get("traceparent", ""))
    trace_id = match.group(1) if match and match.group(1) != "0" * 32 else secrets.token_hex(16)
    flags = match.group(3) if match else "01"
    body = event.body or b""
    request = Request(
        method=str(event.method).upper(),
        path=_raw_path(event),
        query={k: event.query.get(k) for k in event.query} if event.query else {},
        headers=headers,
        body=body,
        request_id=request_id,
        trace_id=trace_id,
        traceparent=f"00-{trace_id}-{secrets.token_hex(8)}-{flags}",
        query_lists=(
            {k: list(event.query.getlist(k)) for k in event.query}
            if event.query and hasattr(event.query, "getlist")
            else {}
        ),
    )
    if len(body) > max_body_bytes:
        raise _TooLarge(request, max_body_bytes)
    return request


def _raw_path(event: Any) -> str:
    """The undecoded path: the template's `raw_path`, else the decoded `path` encoded again
    (a plain python3-http template, a test's event)."""
    raw = getattr(event, "raw_path", None)
    return str(raw) if raw else quote(str(event.path or "/"), safe="/:@!$&'()*+,;=-._~")


class _TooLarge(Exception):
    def __init__(self, request: Request, limit: int) -> None:
        super().__init__("body too large")
        self.request = request
        self.error = PayloadTooLarge(f"request body is larger than {limit} bytes")


def require_bearer(request: Request, expected: bytes, api: str) -> None:
    """401 without ``Authorization: Bearer <token>``, 403 with the wrong token (compared in
    constant time, so response times tell nothing about the secret)."""
    scheme, _, token = request.header("authorization").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <campaigns admin token>")
    if not hmac.compare_digest(token.strip().encode(), expected):
        raise Forbidden(f"the bearer token is not valid for the {api} API")


def _edge_headers(request: Request, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    return {
        "X-Request-Id": request.request_id,
        "traceparent": request.traceparent,
        **dict(extra or {}),
    }


def json_response(
    status: int, body: Any, request: Request, headers: Mapping[str, str] | None = None
) -> Response:
    return {
        "statusCode": status,
        "body": json.dumps(body, separators=(",", ":"), default=str),
        "headers": {"Content-Type": "application/json", **_edge_headers(request, headers)},
    }


def no_content(request: Request, headers: Mapping[str, str] | None = None) -> Response:
    return {"statusCode": 204, "body": "", "headers": _edge_headers(request, headers)}


def error_response(exc: BaseException, request: Request, logger: Logger | None = None) -> Response:
    status, body = http_error(exc, request.request_id)
    if logger is not None and status >= 500:
        logger.exception("request failed", extra={"error": body["error"]})
    headers = None
    if isinstance(exc, _NotAllowed):
        headers = {"Allow": exc.allow}
    elif isinstance(exc, TooManyRequests):
        headers = {"Retry-After": str(exc.retry_after_s)}
    return json_response(status, body, request, headers)


class _NotAllowed(MethodNotAllowed):
    """A 405 that knows the methods the path does allow (for the Allow header)."""

    def __init__(self, message: str, allow: list[str]) -> None:
        super().__init__(message)
        self.allow = ", ".join(sorted(set(allow)))


# Characters no path parameter (an id) may hold once decoded: sent encoded ("%2F", "%23",
# "%3F"), they would otherwise end the segment, the path or the query somewhere downstream.
_RESERVED_IN_ID = re.compile(r"[/#?\\\x00-\x1f\x7f]")
_DOT_SEGMENT = re.compile(r"(?:^|/)(?:\.|%2e){1,2}(?=/|$)", re.IGNORECASE)


def _decoded(params: dict[str, str]) -> dict[str, str] | None:
    """The path parameters decoded, or None when one cannot be an id."""
    try:
        values = {name: unquote(value, errors="strict") for name, value in params.items()}
    except UnicodeDecodeError:
        return None  # not UTF-8 once decoded: names nothing
    if any(_RESERVED_IN_ID.search(value) for value in values.values()):
        return None
    return values


class Router:
    """Method + path-template dispatch by table (`{name}` matches one path segment).

    Matching is on the raw, undecoded path, so an encoded "/" or "#" stays inside its segment;
    a parameter is decoded after the match, and one holding "/", "#", "?" or a control
    character names nothing (404), nor does a path with a "." or ".." segment. Literal
    templates win over parameters ("/bulk" over "/{id}"). OPTIONS answers the methods a path
    allows (204 with Allow); a method the path does not declare is a 405 with Allow; HEAD is
    served as GET.
    """

    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str], Route, str]] = []

    def route(self, method: str, template: str) -> Callable[[Route], Route]:
        pattern = re.compile(
            "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template.rstrip("/") or "/") + "/?$"
        )

        def register(fn: Route) -> Route:
            self._routes.append((method.upper(), pattern, fn, template))
            return fn

        return register

    def dispatch(self, request: Request) -> Response:
        if _DOT_SEGMENT.search(request.path):
            raise NotFound("no such endpoint: a path has no '.' or '..' segments")
        wanted = "GET" if request.method == "HEAD" else request.method
        # The templates with the fewest parameters that match win: "/bulk" over "/{id}".
        matches: list[tuple[int, str, Route, str, dict[str, str]]] = []
        for method, pattern, fn, template in self._routes:
            match = pattern.match(request.path)
            params = _decoded(match.groupdict()) if match is not None else None
            if params is not None:
                matches.append((len(params), method, fn, template, params))
        fewest = min((m[0] for m in matches), default=0)
        best = [m for m in matches if m[0] == fewest]
        for _count, method, fn, template, params in best:
            if method == wanted:
                request.log_fields["route"] = template
                return fn(request, **params)
        if not best:
            raise NotFound(f"no such endpoint: {request.method} {request.path[:200]}")
        allowed = [m[1] for m in best]
        allowed += ["OPTIONS", "HEAD"] if "GET" in allowed else ["OPTIONS"]
        use = ", ".join(sorted(set(allowed)))
        if request.method == "OPTIONS":
            return no_content(request, {"Allow": use})
        raise _NotAllowed(f"{request.method} is not allowed here; use {use}", allowed)

    def handler(
        self,
        service: str,
        max_body_bytes: int = MAX_BODY_BYTES,
        access_log: bool = True,
        ready: Callable[[], bool] = _always_ready,
    ) -> Handler:
        """The template's `handle(event, context)` for this router, with its readiness check.

        Every request gets one JSON log line (requestId, traceparent, function, route, status,
        latency, and what the route annotated) and is counted in `kernel.metrics` by function,
        route and status. `access_log=False` logs only failed requests (4xx/5xx), for a caller
        that logs its own line.
        """
        logger = get_logger(service)

        def handle(event: Any, context: Any) -> Response:
            try:
                request = request_from_event(event, max_body_bytes)
            except _TooLarge as too_large:
                return error_response(too_large.error, too_large.request, logger)
            try:
                response = self.dispatch(request)
            except Exception as exc:
                response = error_response(exc, request, logger)
            status = response.get("statusCode", 200)
            elapsed = time.perf_counter() - request.started
            route = request.log_fields.get("route", UNMATCHED_ROUTE)
            observe_request(service, route, request.method, status, elapsed)
            if not access_log and status < 400:
                return response
            logger.info(
                "request",
                extra={
                    "requestId": request.request_id,
                    "traceparent": request.traceparent,
                    "traceId": request.trace_id,
                    "function": service,
                    "method": request.method,
                    "path": request.path,
                    "status": status,
                    "ms": round(elapsed * 1000, 3),
                    "route": route,
                    **request.log_fields,
                },
            )
            return response

        return Handler(handle, ready)
