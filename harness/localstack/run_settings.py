"""`make run`'s knobs: where its state lives and which ports it takes, from the environment variables the
services themselves read (SUM_*, LEDGER_*, KAFKA_TOPIC) and DISTSUM_* for the rest."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from distsum.settings import KafkaSettings, Port


class RunSettings(BaseSettings):
    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    state_dir: Path | None = Field(default=None, validation_alias="DISTSUM_STATE_DIR")
    topic: str = Field(default=KafkaSettings().topic, validation_alias="KAFKA_TOPIC")
    partitions: Annotated[int, Field(ge=1, le=1000)] = Field(default=6, validation_alias="DISTSUM_PARTITIONS")
    kafka_port: Port = Field(default=9092, validation_alias="DISTSUM_KAFKA_PORT")
    kafka_controller_port: Port = Field(default=9093, validation_alias="DISTSUM_KAFKA_CONTROLLER_PORT")
    grpc_port: Port = Field(default=50051, validation_alias="SUM_GRPC_PORT")
    metrics_port: Port = Field(default=9464, validation_alias="SUM_METRICS_PORT")
    http_port: Port = Field(default=8080, validation_alias="LEDGER_HTTP_PORT")
    ledger_metrics_port: Port = Field(default=9465, validation_alias="LEDGER_METRICS_PORT")
    # Mutual TLS to the sum service, with a CA and certificates made for this run.
    tls: bool = Field(default=False, validation_alias="DISTSUM_TLS")

    def ports(self) -> dict[str, int]:
        """Each port by the variable that moves it."""
        return {
            "DISTSUM_KAFKA_PORT": self.kafka_port,
            "DISTSUM_KAFKA_CONTROLLER_PORT": self.kafka_controller_port,
            "SUM_GRPC_PORT": self.grpc_port,
            "SUM_METRICS_PORT": self.metrics_port,
            "LEDGER_HTTP_PORT": self.http_port,
            "LEDGER_METRICS_PORT": self.ledger_metrics_port,
        }
