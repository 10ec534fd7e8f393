"""The one place a logger comes from: a Powertools JSON logger per service, one line per record.

Every module asks `get_logger(service)` instead of building a logger, a handler or a format of
its own, so that every line the platform writes has the same shape (level, location, message,
timestamp, service and the `extra` fields) and the same guard: a field whose name says it holds a
secret (password, secret, token, authorization, credential, api key) is written as
``[redacted]``, whoever passed it.

Every request writes one such line, so a line must be cheap. Powertools' own formatter copies the
record, formats every key through `%` and encodes with the standard json module; ours
(`_Formatter`, a Powertools formatter) writes the same keys in one pass over the record and
encodes them once with msgspec, the encoder the events already use. A record with an exception
keeps Powertools' own path (exception, exception_name, stack_trace).

The level comes from Powertools' own setting (``POWERTOOLS_LOG_LEVEL``, INFO by default).

Example::

    LOGGER = get_logger("outbox")
    LOGGER.warning("outbox relay step failed", extra={"error": str(exc)})
"""

from __future__ import annotations

import functools
import logging
import re
import time
from typing import Any, Final

import msgspec
from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

__all__ = ["REDACTED", "get_logger"]

REDACTED: Final = "[redacted]"
_SECRET_FIELD: Final = re.compile(
    r"password|secret|token|authorization|credential|api_?key", re.IGNORECASE
)
# What every LogRecord has (and what Powertools adds): anything else came in `extra`.
_RECORD_FIELDS: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "location", "timestamp", "taskName"}
)
# Keys of Powertools' own format, written from the record below; the rest of its format (the
# service, keys appended by the caller) is written as given.
_FIXED_KEYS: Final = frozenset({"level", "location", "message", "timestamp"})


@functools.lru_cache(maxsize=4096)
def _is_secret(name: str) -> bool:
    return _SECRET_FIELD.search(name) is not None


class _Formatter(LambdaPowertoolsFormatter):
    """Powertools' JSON line, built in one pass and encoded once with msgspec."""

    def __init__(self, **kwargs: Any) -> None:
        encoder = msgspec.json.Encoder(enc_hook=str)
        super().__init__(json_serializer=lambda log: encoder.encode(log).decode(), **kwargs)
        self._encode = encoder.encode
        self._second = -1
        self._second_text = ""
        self._zone = ""

    def format(self, record: logging.LogRecord) -> str:
        fields = vars(record)
        extras = [name for name in fields if name not in _RECORD_FIELDS]
        for name in extras:
            if fields[name] is not None and _is_secret(name):
                fields[name] = REDACTED
        if record.exc_info or record.stack_info:
            return super().format(record)
        line: dict[str, Any] = {
            "level": record.levelname,
            "location": f"{record.funcName}:{record.lineno}",
            "message": record.getMessage(),
            "timestamp": self._timestamp(record),
        }
        for key, value in self.log_format.items():
            if key not in _FIXED_KEYS and value is not None:
                line[key] = value
        for name in extras:
            if (value := fields[name]) is not None:
                line[name] = value
        return self._encode(line).decode()

    def _timestamp(self, record: logging.LogRecord) -> str:
        """Powertools' default time format, '2026-12-07 06:50:14,440+0000'; the part before
        the milliseconds is formatted once per second."""
        second = int(record.created)
        if second != self._second:
            when = self.converter(record.created)
            self._second_text = time.strftime("%Y-%m-%d %H:%M:%S", when)
            self._zone = time.strftime("%z", when)
            self._second = second
        return f"{self._second_text},{int(record.msecs):03d}{self._zone}"


@functools.cache
def get_logger(service: str) -> Logger:
    """The logger of `service` (one per name and process; its JSON lines redact secrets)."""
    return Logger(service=service, logger_formatter=_Formatter())
