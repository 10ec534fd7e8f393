"""Our errors, each saying whose fault it is, and the one place that turns any error into HTTP.

Every 4xx/5xx body in the product is ``{"error": CODE, "message": text, "requestId": id}``
(docs/specification.md, "Errors"). Handlers raise these classes (or let driver errors be wrapped
into them with ``raise ... from exc`` in the module that owns the driver) and call `http_error` once
at the edge. Anything that is not one of ours is a bug on our side: it becomes ``500 INTERNAL`` with
a generic message, so that no stack trace, SQL text or host name ever reaches a client.

Example::

    try:
        request = parse_bid_request(body)
    except AdServerError as exc:
        status, body = http_error(exc, request_id)  # (400, {"error": "INVALID_REQUEST", ...})
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

__all__ = [
    "AdServerError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InvalidSettings",
    "InvalidToken",
    "MethodNotAllowed",
    "NotFound",
    "PayloadTooLarge",
    "TokenExpired",
    "TooManyRequests",
    "Unauthorized",
    "UpstreamFailed",
    "UpstreamUnavailable",
    "ValidationFailed",
    "http_error",
]

_MAX_MESSAGE_CHARS = 1_000
_INTERNAL_MESSAGE = "internal error; the request id identifies it in our logs"


class AdServerError(Exception):
    """Base of our errors: an HTTP status, a stable CODE for clients, and a readable message.

    `expose_message` is False where the message is meant for operators only (configuration
    problems): clients then see the generic text.
    """

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL"
    expose_message: ClassVar[bool] = True

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# The client's fault (4xx).
class BadRequest(AdServerError):
    """The request cannot be understood: malformed JSON, missing parameters."""

    status = 400
    code = "INVALID_REQUEST"


class ValidationFailed(BadRequest):
    """The request was understood but some fields are invalid; `fields` names each of them.

    It keeps the specification's code INVALID_REQUEST (the specification answers a missing userId
    with it), so that clients need to know one code for "fix your input".
    """

    def __init__(self, message: str, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.fields = tuple(fields)


class InvalidToken(BadRequest):
    """A signed token (click tracking) is malformed or its signature does not match."""

    code = "INVALID_TOKEN"


class TokenExpired(InvalidToken):
    """A signed token was genuine but is past its expiry: the link is gone, not wrong."""

    status = 410
    code = "TOKEN_EXPIRED"


class Unauthorized(AdServerError):
    """No credentials, or credentials we do not recognise."""

    status = 401
    code = "UNAUTHORIZED"


class Forbidden(AdServerError):
    """Recognised credentials that do not allow this action."""

    status = 403
    code = "FORBIDDEN"


class NotFound(AdServerError):
    status = 404
    code = "NOT_FOUND"


class MethodNotAllowed(AdServerError):
    status = 405
    code = "METHOD_NOT_ALLOWED"


class Conflict(AdServerError):
    """The request contradicts the current state (duplicate id, stale update)."""

    status = 409
    code = "CONFLICT"


class TooManyRequests(AdServerError):
    """The caller's rate limit is used up; `retry_after_s` says when to try again."""

    status = 429
    code = "RATE_LIMITED"

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(message)
        self.retry_after_s = max(1, retry_after_s)


class PayloadTooLarge(AdServerError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


# Our fault or a dependency's (5xx).
class UpstreamUnavailable(AdServerError):
    """A dependency (Redis, PostgreSQL, Kafka, another function) cannot be reached in time.

    Worth retrying later; raised ``from`` the driver's error so logs keep the cause.
    """

    status = 503
    code = "UPSTREAM_UNAVAILABLE"


class UpstreamFailed(AdServerError):
    """A dependency answered, but with something we did not expect (an error reply)."""

    status = 502
    code = "UPSTREAM_ERROR"


class InvalidSettings(AdServerError):
    """The component's configuration is incomplete or wrong; the message lists every problem.

    Raised at start-up. Its message is for operators, so clients only ever see INTERNAL.
    """

    code = "INTERNAL"
    expose_message = False

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        listing = "\n".join(f"  - {problem}" for problem in self.problems)
        super().__init__(f"{len(self.problems)} configuration problem(s):\n{listing}")


def http_error(exc: BaseException, request_id: str) -> tuple[int, dict[str, str]]:
    """Map any exception to the HTTP status and the product's JSON error body.

    Ours keep their status, code and message; anything else is ``500 INTERNAL`` with a generic
    message (log the exception yourself; this function never puts it in the body).

    >>> http_error(NotFound("campaign c-1 does not exist"), "req-1")
    (404, {'error': 'NOT_FOUND', 'message': 'campaign c-1 does not exist', 'requestId': 'req-1'})
    >>> http_error(KeyError("secret"), "req-2")[1]["message"]
    'internal error; the request id identifies it in our logs'
    """
    if isinstance(exc, AdServerError):
        status, code = exc.status, exc.code
        message = exc.message if exc.expose_message else _INTERNAL_MESSAGE
    else:
        status, code, message = 500, "INTERNAL", _INTERNAL_MESSAGE
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[: _MAX_MESSAGE_CHARS - 1] + "…"
    return status, {"error": code, "message": message, "requestId": request_id}
