"""Standard gRPC health driven by a periodic Kafka reachability probe."""

from __future__ import annotations

import asyncio
import contextlib
import logging
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
        self.servicer = health.aio.HealthServicer()
        self._probe = probe
        self._interval = interval
        self._reachable = False
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._set(reachable=False, announce=False)
        await self.servicer.set(LIVENESS_NAME, health_pb2.HealthCheckResponse.SERVING)
        self._task = asyncio.create_task(self._run(), name="kafka-health-probe")

    def is_reachable(self) -> bool:
        return self._reachable

    def is_serving(self) -> bool:
        """What the readiness probe reads (from the metrics port's thread): Kafka reachable, not stopping."""
        return self._reachable and not self._stopping.is_set()

    async def shut_down(self) -> None:
        """Report NOT_SERVING for good, so load balancers drain us before the server stops."""
        self._stopping.set()
        await self.servicer.enter_graceful_shutdown()
        if self._task is not None:
            # The probe in flight runs in a thread and ends within its own timeout.
            await self._task

    async def _run(self) -> None:
        while not self._stopping.is_set():
            reachable = await self._probe_once()
            if reachable != self._reachable and not self._stopping.is_set():
                await self._set(reachable, announce=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    async def _probe_once(self) -> bool:
        try:
            # The probe blocks on a Kafka metadata request: a thread keeps the loop serving meanwhile.
            return await asyncio.to_thread(self._probe, max(self._interval, 1.0))
        except Exception:
            # Were this task to end, health would stay frozen at its last answer.
            log.exception("kafka probe failed; counting kafka unreachable")
            return False

    async def _set(self, reachable: bool, announce: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if reachable
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in SERVICE_NAMES:
            await self.servicer.set(name, status)
        metrics.KAFKA_REACHABLE.set(1 if reachable else 0)
        self._reachable = reachable
        if announce:
            if reachable:
                log.info("kafka reachable; serving")
            else:
                log.warning("kafka unreachable; not serving")
