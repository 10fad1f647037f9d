"""Wires the sum service together and runs it until SIGTERM or SIGINT."""

from __future__ import annotations

import logging
import signal
import socket
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health_pb2_grpc
from opentelemetry.instrumentation.grpc import filters, server_interceptor
from prometheus_client import start_http_server

from distsum import logs, settings, telemetry
from distsum.v1 import sum_pb2, sum_pb2_grpc
from sum_svc import metrics, reflection
from sum_svc.adding import Adder
from sum_svc.config import SumSettings
from sum_svc.grpc_api import MetricsInterceptor, SumServicer
from sum_svc.health import KafkaHealth
from sum_svc.idempotency import IdempotencyRecord
from sum_svc.kafka_publisher import KafkaPublisher

log = logging.getLogger("sum_svc")


def main() -> None:
    logs.configure("sum-svc")
    config = settings.load(SumSettings)
    kafka = settings.load(settings.KafkaSettings)
    telemetry.configure_tracing("sum-svc")

    publisher = KafkaPublisher(
        kafka.bootstrap_servers,
        kafka.topic,
        config.delivery_timeout_seconds,
        client_id=f"sum-svc-{socket.gethostname()}",
    )
    health = KafkaHealth(publisher.probe, config.health_probe_interval_seconds)
    record = IdempotencyRecord(config.idempotency_max_entries, config.idempotency_ttl_seconds)
    metrics.IDEMPOTENCY_ENTRIES.set_function(lambda: len(record))
    adder = Adder(record, publisher, health.is_reachable)

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=config.max_workers, thread_name_prefix="grpc"),
        interceptors=[
            server_interceptor(filter_=filters.negate(filters.health_check())),
            MetricsInterceptor(),
        ],
    )
    sum_pb2_grpc.add_SumServiceServicer_to_server(SumServicer(adder, config.publish_timeout_seconds), server)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    reflection.enable(
        server, (sum_pb2.DESCRIPTOR.services_by_name["SumService"].full_name, "grpc.health.v1.Health")
    )
    address = f"{config.grpc_host}:{config.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise SystemExit(f"cannot listen on {address}")
    start_http_server(config.metrics_port)
    server.start()
    health.start()
    log.info(
        "sum service started",
        extra={"grpc": address, "metrics_port": config.metrics_port, "topic": kafka.topic},
    )

    stop_requested = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop_requested.set())
    # A SIGTERM the kernel hands to one of the gRPC threads only runs its Python handler once the main
    # thread executes bytecode again, so an untimed wait could sleep through it.
    while not stop_requested.wait(timeout=0.5):
        pass

    log.info("stopping: draining in-flight requests", extra={"grace_seconds": config.shutdown_grace_seconds})
    health.shut_down()
    server.stop(config.shutdown_grace_seconds).wait()
    publisher.close(config.shutdown_grace_seconds)
    telemetry.shutdown_tracing()
    log.info("sum service stopped")


if __name__ == "__main__":
    main()
