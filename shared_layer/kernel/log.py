"""The one place a logger comes from: a Powertools JSON logger per service, one line per record.

Every module asks `get_logger(service)` instead of building a logger, a handler or a format of
its own, so that every line the platform writes has the same shape (level, location, message,
timestamp, service and the `extra` fields) and the same guard: a field whose name says it holds a
secret (password, secret, token, authorization, credential, api key) is written as
``[redacted]``, whoever passed it.

The level comes from Powertools' own setting (``POWERTOOLS_LOG_LEVEL``, INFO by default).

Example::

    LOGGER = get_logger("outbox")
    LOGGER.warning("outbox relay step failed", extra={"error": str(exc)})
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Final

from aws_lambda_powertools import Logger

__all__ = ["REDACTED", "get_logger"]

REDACTED: Final = "[redacted]"
_SECRET_FIELD: Final = re.compile(
    r"password|secret|token|authorization|credential|api_?key", re.IGNORECASE
)


class _RedactSecrets(logging.Filter):
    """Replaces the value of every record attribute whose name names a secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in list(vars(record).items()):
            if value is not None and _SECRET_FIELD.search(name):
                setattr(record, name, REDACTED)
        return True


@functools.cache
def get_logger(service: str) -> Logger:
    """The logger of `service` (one per name and process; its JSON handler redacts secrets)."""
    logger = Logger(service=service)
    handler = logger.registered_handler
    if not any(isinstance(f, _RedactSecrets) for f in handler.filters):
        handler.addFilter(_RedactSecrets())
    return logger
