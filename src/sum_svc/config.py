"""Sum service configuration (environment variables prefixed SUM_, plus KAFKA_*)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from distsum.settings import Port, PositiveSeconds


class SumSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SUM_", extra="ignore", frozen=True)

    grpc_host: str = "[::]"
    grpc_port: Port = 50051
    metrics_port: Port = 9464
    idempotency_max_entries: Annotated[int, Field(ge=1, le=10_000_000)] = 100_000
    idempotency_ttl_seconds: PositiveSeconds = 3600
    publish_timeout_seconds: PositiveSeconds = 5
    delivery_timeout_seconds: PositiveSeconds = 30
    # How long the producer waits to fill a batch (librdkafka's linger.ms). Each batch is a produce
    # request the broker pays for; too short a wait sends nearly every event alone (docs/performance.md).
    kafka_linger_ms: Annotated[int, Field(ge=0, le=1000)] = 5
    health_probe_interval_seconds: PositiveSeconds = 1
    shutdown_grace_seconds: PositiveSeconds = 10
    # Served reflection lets grpcurl, grpcui and ghz work without the .proto files; off hides the API's
    # shape from whoever reaches the port.
    reflection: bool = True
    # Limits (sum_svc/limits.py, docs/configuration.md#limits).
    max_receive_message_bytes: Annotated[int, Field(ge=256, le=4 * 1024 * 1024)] = 4096
    max_concurrent_streams: Annotated[int, Field(ge=1, le=100_000)] = 250
    max_in_flight_calls: Annotated[int, Field(ge=1, le=1_000_000)] = 1000
    max_connection_age_seconds: PositiveSeconds = 300
    max_connection_idle_seconds: PositiveSeconds = 600
    keepalive_min_ping_interval_seconds: PositiveSeconds = 10

    @model_validator(mode="after")
    def _timeouts_are_ordered(self) -> SumSettings:
        if self.delivery_timeout_seconds < self.publish_timeout_seconds:
            raise ValueError("SUM_DELIVERY_TIMEOUT_SECONDS must be >= SUM_PUBLISH_TIMEOUT_SECONDS")
        if self.idempotency_ttl_seconds <= self.delivery_timeout_seconds:
            raise ValueError("SUM_IDEMPOTENCY_TTL_SECONDS must be > SUM_DELIVERY_TIMEOUT_SECONDS")
        return self
