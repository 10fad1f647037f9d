"""Standard gRPC health driven by a periodic Kafka reachability probe."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from grpc_health.v1 import health, health_pb2

from sum_svc import metrics

log = logging.getLogger(__name__)

SERVICE_NAMES = ("", "distsum.v1.SumService")
# Liveness must not follow Kafka: restarting pods during a broker outage would only add churn.
LIVENESS_NAME = "liveness"


class KafkaHealth:
    """Publishes SERVING only while the probe says Kafka can take our events."""

    def __init__(self, probe: Callable[[float], bool], interval: float):
        self.servicer = health.HealthServicer()
        self._probe = probe
        self._interval = interval
        self._reachable = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="kafka-health-probe", daemon=True)
        self._set(reachable=False, announce=False)
        self.servicer.set(LIVENESS_NAME, health_pb2.HealthCheckResponse.SERVING)

    def start(self) -> None:
        self._thread.start()

    def is_reachable(self) -> bool:
        return self._reachable.is_set()

    def shut_down(self) -> None:
        """Report NOT_SERVING for good, so load balancers drain us before the server stops."""
        self._stopping.set()
        self.servicer.enter_graceful_shutdown()

    def _run(self) -> None:
        while not self._stopping.is_set():
            reachable = self._probe(max(self._interval, 1.0))
            if reachable != self._reachable.is_set() and not self._stopping.is_set():
                self._set(reachable, announce=True)
            self._stopping.wait(self._interval)

    def _set(self, reachable: bool, announce: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if reachable
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in SERVICE_NAMES:
            self.servicer.set(name, status)
        metrics.KAFKA_REACHABLE.set(1 if reachable else 0)
        if reachable:
            self._reachable.set()
        else:
            self._reachable.clear()
        if announce:
            if reachable:
                log.info("kafka reachable; serving")
            else:
                log.warning("kafka unreachable; not serving")
