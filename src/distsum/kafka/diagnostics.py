"""Kafka client diagnostics as JSON log lines, each kind at most once per interval.

While a broker is down, librdkafka reports every reconnect attempt of every client, many times a
second, as plain text on stderr. At that rate a pod that is only waiting for Kafka floods its logs and
looks broken, and the plain lines break JSON log pipelines. So librdkafka's own logging is turned down
and its error events go through this throttle into the service's JSON logs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError

from distsum.logs import ThrottledLog

# librdkafka syslog levels: 2 (critical) silences its per-attempt connection errors, which the error
# events below report anyway; debugging turns it all back on.
_QUIET_LIBRDKAFKA, _VERBOSE_LIBRDKAFKA = 2, 7


class KafkaDiagnostics:
    """The error_cb of a Kafka client: logs the first error of each kind, then at most one summary of
    that kind per interval."""

    def __init__(
        self,
        logger: logging.Logger,
        interval: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._logger = logger
        self._throttled = ThrottledLog(logger, interval, clock)

    def config(self) -> dict[str, Any]:
        """librdkafka settings that route its errors here: merge into a client's configuration."""
        verbose = self._logger.isEnabledFor(logging.DEBUG)
        return {"error_cb": self.on_error, "log_level": _VERBOSE_LIBRDKAFKA if verbose else _QUIET_LIBRDKAFKA}

    def on_error(self, error: KafkaError) -> None:
        level = logging.ERROR if error.fatal() else logging.WARNING
        kind = str(error.name())
        detail = str(error.str())
        self._throttled.log(level, kind, "kafka client error", {"kafka_error": kind, "detail": detail})
