"""What one caller can cost the sum service: the gRPC server's transport limits, and a cap on the Adds
in flight that answers RESOURCE_EXHAUSTED instead of queueing without bound.

An AddRequest is under 100 bytes, so a receive limit of a few KiB refuses nothing real and keeps a
4 MiB message from being read at all. Health checks are never capped: a busy service must not be
restarted by its own probes.
"""

from __future__ import annotations

import logging
from typing import Any

import grpc

from distsum.logs import ThrottledLog
from sum_svc import metrics
from sum_svc.config import SumSettings

log = logging.getLogger(__name__)

BUSY_MESSAGE = "the service is at its limit of calls in flight; retry the same request_id after a backoff"
# Servers ping idle clients this often to find connections whose peer vanished without a FIN.
_KEEPALIVE_TIME_MS = 60_000
_KEEPALIVE_TIMEOUT_MS = 20_000


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def server_options(config: SumSettings) -> list[tuple[str, Any]]:
    """grpc.aio.server options for the limits of config (docs/configuration.md)."""
    return [
        ("grpc.max_receive_message_length", config.max_receive_message_bytes),
        ("grpc.max_concurrent_streams", config.max_concurrent_streams),
        ("grpc.max_connection_age_ms", _ms(config.max_connection_age_seconds)),
        # A call in flight when its connection reaches that age may take as long as a publication can.
        ("grpc.max_connection_age_grace_ms", _ms(config.publish_timeout_seconds + 1)),
        ("grpc.max_connection_idle_ms", _ms(config.max_connection_idle_seconds)),
        ("grpc.keepalive_time_ms", _KEEPALIVE_TIME_MS),
        ("grpc.keepalive_timeout_ms", _KEEPALIVE_TIMEOUT_MS),
        # A client that pings more often than this without sending data earns a strike; after two the
        # server closes its connection (GOAWAY "too_many_pings").
        ("grpc.http2.min_ping_interval_without_data_ms", _ms(config.keepalive_min_ping_interval_seconds)),
        ("grpc.http2.max_ping_strikes", 2),
    ]


Behaviour = Any  # an aio unary behaviour: async (request, context) -> response


class InFlightCap:
    """At most `maximum` capped calls at once in this process; one more is refused at once.

    Confined to the server's event loop (every call runs on it), so a plain counter is enough."""

    def __init__(self, maximum: int):
        self.maximum = maximum
        self.current = 0
        self._refused = metrics.REFUSED.labels(reason="in_flight_limit")
        self._log = ThrottledLog(log, interval=10.0)

    def guard(self, behaviour: Behaviour) -> Behaviour:
        async def capped(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
            if self.current >= self.maximum:
                self._refused.inc()
                self._log.log(
                    logging.WARNING,
                    "in_flight_limit",
                    "call refused: the limit of calls in flight is reached",
                    {"limit": self.maximum, "peer": context.peer()},
                )
                await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, BUSY_MESSAGE)
            self.current += 1
            try:
                return await behaviour(request, context)
            finally:
                self.current -= 1

        return capped
