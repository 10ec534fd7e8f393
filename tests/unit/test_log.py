"""The logger factory: one logger (and one handler) per service, JSON lines, secrets redacted."""

from __future__ import annotations

import io
import json
import logging

from shared_layer.kernel.log import REDACTED, get_logger


def test_one_logger_and_one_handler_per_service() -> None:
    first = get_logger("unit-log-once")
    assert get_logger("unit-log-once") is first
    assert len(first.handlers) == 1


def test_fields_that_name_a_secret_are_redacted_and_the_rest_kept() -> None:
    logger = get_logger("unit-log-redact")
    out = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    logger.warning(
        "connecting",
        extra={
            "postgresPassword": "hunter2",
            "clickToken": "v1.abc",
            "Authorization": "Bearer s3cr3t",
            "secret_access_key": "AKIA",
            "campaignId": "c-1",
        },
    )
    line = json.loads(out.getvalue())
    assert line["service"] == "unit-log-redact"
    assert line["message"] == "connecting"
    assert line["campaignId"] == "c-1"
    for field in ("postgresPassword", "clickToken", "Authorization", "secret_access_key"):
        assert line[field] == REDACTED
    assert "hunter2" not in out.getvalue()
    assert "s3cr3t" not in out.getvalue()


def lines_of(logger, emit) -> list[dict]:
    out = io.StringIO()
    logger.registered_handler.setStream(out)
    emit()
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_a_line_has_the_keys_and_values_of_powertools_own_formatter() -> None:
    """Our one-pass formatter writes what Powertools' formatter would, key for key."""
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    logger = get_logger("unit-log-shape")
    extra = {
        "requestId": "r-1",
        "status": 200,
        "ms": 1.234,
        "ok": True,
        "nested": {"a": [1, 2, {"b": None}]},
        "nothing": None,
        "thing": object,  # not JSON: written as its str(), as Powertools does
    }

    def emit() -> None:
        logger.info("request %s", "served", extra=extra)

    ours = lines_of(logger, emit)
    handler = logger.registered_handler
    formatter = handler.formatter
    reference = LambdaPowertoolsFormatter()
    reference.append_keys(service="unit-log-shape")
    handler.setFormatter(reference)
    try:
        theirs = lines_of(logger, emit)
    finally:
        handler.setFormatter(formatter)
    ours[0].pop("timestamp")
    theirs[0].pop("timestamp")
    assert ours == theirs
    assert ours[0]["message"] == "request served" and "nothing" not in ours[0]
    assert list(ours[0])[:5] == ["level", "location", "message", "service", "requestId"]


def test_the_timestamp_keeps_powertools_format_and_milliseconds() -> None:
    logger = get_logger("unit-log-time")
    lines = lines_of(logger, lambda: [logger.info("one"), logger.info("two")])
    for line in lines:
        # '2026-12-07 06:50:14,440+0000'
        assert len(line["timestamp"]) == 28 and line["timestamp"][19] == ",", line
    assert lines[0]["timestamp"][:19] <= lines[1]["timestamp"][:19]


def test_an_exception_line_has_its_traceback_and_still_redacts() -> None:
    logger = get_logger("unit-log-exception")

    def emit() -> None:
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("failed", extra={"apiKey": "k-123", "campaignId": "c-1"})

    (line,) = lines_of(logger, emit)
    assert line["exception_name"] == "ValueError" and "boom" in line["exception"]
    assert line["apiKey"] == REDACTED and line["campaignId"] == "c-1"
