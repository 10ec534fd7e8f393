"""Errors: each class says whose fault it is; one function maps any exception to the body."""

from __future__ import annotations

import pytest

from shared_layer.kernel import errors
from shared_layer.kernel.errors import http_error


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (errors.BadRequest("userId and placementId are required"), 400, "INVALID_REQUEST"),
        (errors.ValidationFailed("userId: too long", ["userId"]), 400, "INVALID_REQUEST"),
        (errors.InvalidToken("click token is malformed"), 400, "INVALID_TOKEN"),
        (errors.TokenExpired("click token has expired"), 410, "TOKEN_EXPIRED"),
        (errors.Unauthorized("missing bearer token"), 401, "UNAUTHORIZED"),
        (errors.Forbidden("token may not write"), 403, "FORBIDDEN"),
        (errors.NotFound("campaign c-1 does not exist"), 404, "NOT_FOUND"),
        (errors.MethodNotAllowed("use POST"), 405, "METHOD_NOT_ALLOWED"),
        (errors.Conflict("campaign c-1 exists"), 409, "CONFLICT"),
        (errors.PayloadTooLarge("body is larger than 65536 bytes"), 413, "PAYLOAD_TOO_LARGE"),
        (errors.UpstreamFailed("budget ledger error"), 502, "UPSTREAM_ERROR"),
        (errors.UpstreamUnavailable("budget ledger unavailable"), 503, "UPSTREAM_UNAVAILABLE"),
    ],
)
def test_our_errors_keep_status_code_and_message(
    error: errors.AdServerError, status: int, code: str
) -> None:
    assert http_error(error, "req-1") == (
        status,
        {"error": code, "message": error.message, "requestId": "req-1"},
    )


@pytest.mark.parametrize(
    "exc",
    [
        KeyError("password=hunter2"),
        RuntimeError("SELECT * FROM campaigns WHERE ..."),
        ZeroDivisionError(),
        errors.InvalidSettings(["POSTGRES_URL: required but is not set"]),
    ],
)
def test_anything_else_is_500_with_a_message_that_leaks_nothing(exc: BaseException) -> None:
    status, body = http_error(exc, "req-2")
    assert status == 500
    assert body["error"] == "INTERNAL"
    assert body["requestId"] == "req-2"
    assert str(exc) not in body["message"] or not str(exc)
    assert "POSTGRES" not in body["message"] and "hunter2" not in body["message"]


def test_the_body_has_exactly_the_three_fields() -> None:
    _, body = http_error(errors.ValidationFailed("x: bad", ["x"]), "req-3")
    assert set(body) == {"error", "message", "requestId"}


def test_long_messages_are_cut() -> None:
    _, body = http_error(errors.BadRequest("x" * 5_000), "req-4")
    assert len(body["message"]) == 1_000


def test_invalid_settings_lists_every_problem_for_operators() -> None:
    error = errors.InvalidSettings(["A: required", "B: must be greater than 0"])
    assert error.problems == ("A: required", "B: must be greater than 0")
    assert "A: required" in str(error) and "B: must be greater than 0" in str(error)
