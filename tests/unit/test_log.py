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
