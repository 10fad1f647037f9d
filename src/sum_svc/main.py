"""Wires the sum service together and runs it until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket

import grpc
import uvloop
from grpc_health.v1 import health_pb2_grpc
from prometheus_client import REGISTRY

from distsum import logs, ops_server, settings, telemetry, tls
from distsum.kafka.security import CredentialRotation, client_security
from distsum.v1 import sum_pb2, sum_pb2_grpc
from sum_svc import limits, metrics, reflection
from sum_svc.access import CallerCheck
from sum_svc.adding import Adder
from sum_svc.config import SumSettings
from sum_svc.grpc_api import SumServicer, TelemetryInterceptor
from sum_svc.health import KafkaHealth
from sum_svc.idempotency import IdempotencyRecord
from sum_svc.kafka_publisher import KafkaPublisher

log = logging.getLogger("sum_svc")


async def serve(config: SumSettings, kafka: settings.KafkaSettings, transport: tls.TlsSettings) -> None:
    loop = asyncio.get_running_loop()
    stop_requested = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop_requested.set)

    def restart_for_new_credentials() -> None:
        loop.call_soon_threadsafe(stop_requested.set)

    # Made before the producer, so that a rotation while it is being made is noticed too.
    rotation = CredentialRotation(kafka, restart_for_new_credentials)
    record = IdempotencyRecord(config.idempotency_max_entries, config.idempotency_ttl_seconds)

    def forget_acknowledgements() -> None:
        # Events acknowledged by a log that is gone may never have reached the ledger; the ledger
        # skips any of them it did apply, so publishing them again on a retry is safe.
        log.warning(
            "Kafka lost the log the remembered request ids were published to; forgetting them",
            extra={"forgotten": record.forget_all()},
        )

    publisher = KafkaPublisher(
        kafka.bootstrap_servers,
        kafka.topic,
        config.delivery_timeout_seconds,
        linger_ms=config.kafka_linger_ms,
        client_id=f"sum-svc-{socket.gethostname()}",
        loop=loop,
        on_log_lost=forget_acknowledgements,
        security=client_security(kafka),
    )
    health = KafkaHealth(publisher.probe, config.health_probe_interval_seconds)
    metrics.IDEMPOTENCY_ENTRIES.set_function(lambda: len(record))
    adder = Adder(record, publisher, health.is_reachable)

    # One event loop serves every call: the work between receiving a request and Kafka's
    # acknowledgement never blocks, so threads would only add hand-offs and contention.
    mutual_tls = transport.enabled and transport.client_auth
    access = CallerCheck(transport.allowed_clients) if mutual_tls else None
    server = grpc.aio.server(
        interceptors=[TelemetryInterceptor(limits.InFlightCap(config.max_in_flight_calls), access)],
        options=limits.server_options(config),
    )
    sum_pb2_grpc.add_SumServiceServicer_to_server(SumServicer(adder, config.publish_timeout_seconds), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    if config.reflection:
        reflection.enable(
            server, (sum_pb2.DESCRIPTOR.services_by_name["SumService"].full_name, "grpc.health.v1.Health")
        )
    address = f"{config.grpc_host}:{config.grpc_port}"
    if transport.enabled:
        port = server.add_secure_port(address, tls.grpc_server_credentials(transport))
    else:
        port = server.add_insecure_port(address)
    if port == 0:
        raise SystemExit(f"cannot listen on {address}")
    if transport.enabled:
        REGISTRY.register(tls.CertificateExpiry(transport.cert_file))
    ops_server.serve("0.0.0.0", config.metrics_port, REGISTRY, ready=health.is_serving)
    await server.start()
    await health.start()
    rotation.start()
    log.info(
        "sum service started",
        extra={
            "grpc": address,
            "metrics_port": config.metrics_port,
            "topic": kafka.topic,
            "reflection": config.reflection,
            "tls": transport.enabled,
            "client_auth": mutual_tls,
            "max_in_flight_calls": config.max_in_flight_calls,
        },
    )

    await stop_requested.wait()
    rotation.stop()
    log.info("stopping: draining in-flight requests", extra={"grace_seconds": config.shutdown_grace_seconds})
    await health.shut_down()
    await server.stop(config.shutdown_grace_seconds)
    await asyncio.to_thread(publisher.close, config.shutdown_grace_seconds)


def main() -> None:
    logs.configure("sum-svc")
    config = settings.load(SumSettings)
    kafka = settings.load(settings.KafkaSettings)
    transport = settings.load(tls.TlsSettings)
    telemetry.configure_tracing("sum-svc", edge=True)
    # uvloop's event loop costs less per call than asyncio's own (measured: docs/performance.md).
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(serve(config, kafka, transport))
    telemetry.shutdown_tracing()
    log.info("sum service stopped")


if __name__ == "__main__":
    main()
