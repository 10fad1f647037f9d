"""One JSON object per log line, carrying the current trace and span ids; and a throttle for lines
that a fault or an abusive caller could repeat thousands of times a second.

Loki parses these lines and Grafana links a log line to its trace through trace_id,
so the ids must be present on every record logged inside a span.
"""

from __future__ import annotations

import faulthandler
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace

_STANDARD_ATTRS = frozenset(vars(logging.makeLogRecord({})).keys()) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self._service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self._service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        span_context = trace.get_current_span().get_span_context()
        if span_context.is_valid:
            entry["trace_id"] = format(span_context.trace_id, "032x")
            entry["span_id"] = format(span_context.span_id, "016x")
        entry.update({k: v for k, v in vars(record).items() if k not in _STANDARD_ATTRS})
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure(service: str, level: str | None = None) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel((level or os.environ.get("LOG_LEVEL", "INFO")).upper())
    # A crash inside a C extension (librdkafka, gRPC) otherwise leaves only an exit status: this prints
    # every thread's Python stack to the same stream first. It costs nothing until a fatal signal.
    faulthandler.enable(sys.stderr)


class ThrottledLog:
    """Logs the first line of each kind, then at most one per interval, which says how many lines of
    that kind it left out (repeats_not_logged). Thread-safe; a repeat inside the interval costs a dict
    lookup and a counter."""

    def __init__(
        self, logger: logging.Logger, interval: float = 60.0, clock: Callable[[], float] = time.monotonic
    ):
        self._logger = logger
        self._interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        self._last_logged: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    def log(self, level: int, kind: str, message: str, extra: dict[str, Any]) -> None:
        now = self._clock()
        with self._lock:
            last = self._last_logged.get(kind)
            if last is not None and now - last < self._interval:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return
            self._last_logged[kind] = now
            suppressed = self._suppressed.pop(kind, 0)
        self._logger.log(level, message, extra={**extra, "repeats_not_logged": suppressed})
