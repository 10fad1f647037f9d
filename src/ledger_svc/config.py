"""Ledger service configuration (environment variables prefixed LEDGER_, plus KAFKA_*)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from distsum.settings import Port, PositiveSeconds

# The consumer's Kafka session: a member that has not heartbeated for this long is dropped from the group.
KAFKA_SESSION_TIMEOUT_SECONDS = 15.0


class LedgerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore", frozen=True)

    data_dir: Path = Path("/data")
    run_dir: Path = Path("/tmp/ledger")
    http_host: str = "0.0.0.0"
    http_port: Port = 8080
    # /metrics and the liveness /healthz, off the REST port (ledger_svc/ops/server.py). Not the sum
    # service's 9464, so both run side by side on one host.
    metrics_port: Port = 9465
    # Per read and per write on a REST connection: a client that stalls longer loses it, and its thread
    # goes back to the pool (ledger_svc/web/worker.py).
    http_io_timeout_seconds: PositiveSeconds = 10
    web_workers: Annotated[int, Field(ge=1, le=64)] = 2
    web_threads: Annotated[int, Field(ge=1, le=64)] = 4
    group_id: str = Field(default="distsum-ledger", min_length=1)
    # Static membership: a restarted ledger takes its partitions back at once instead of
    # waiting for the crashed member's session to time out.
    group_instance_id: str = Field(default_factory=socket.gethostname, min_length=1)
    dead_letter_topic: str = Field(default="", pattern=r"^[A-Za-z0-9._-]{0,249}$")
    batch_max_messages: Annotated[int, Field(ge=1, le=100_000)] = 500
    batch_wait_seconds: PositiveSeconds = 0.1
    retry_interval_seconds: PositiveSeconds = 2
    # How soon a Kafka log that starts again under a running ledger (topic created again, broker
    # replaced) is noticed; each check costs a few small admin requests.
    log_check_interval_seconds: PositiveSeconds = 5
    ready_stale_seconds: PositiveSeconds = 15
    # The supervisor kills a consumer whose heartbeat has not changed for this long (ledger_svc/watchdog.py):
    # well above the longest call the loop makes between heartbeats (a consumer close waits 10 s).
    consumer_stuck_seconds: Annotated[float, Field(ge=30, le=3600)] = 120
    # A static member may never rejoin after the group coordinator restarted (librdkafka #3437): a consumer
    # subscribed without partitions this long is replaced. At least 20 s, above the 15 s session timeout,
    # within which an empty assignment is an ordinary rebalance still waiting for a departed member.
    rejoin_after_seconds: Annotated[float, Field(ge=20, le=3600)] = 30
    # librdkafka's close() waits for the group requests in flight, and a rejoin that a restarted coordinator
    # holds can keep it waiting for minutes: a consumer replaced or stopped is waited for this long, then
    # left to finish closing on its own thread.
    consumer_close_timeout_seconds: PositiveSeconds = 10
    # Where backups are written (python -m ledger_svc.backup take) and, where the ledger mounts it, whose
    # newest backup its metrics report; how many the backup command keeps there.
    backup_dir: Path | None = None
    backup_keep: Annotated[int, Field(ge=1, le=10_000)] = 7

    def dead_letters_for(self, topic: str) -> str:
        return self.dead_letter_topic or f"{topic}.dlq"

    @property
    def total_file(self) -> Path:
        return self.data_dir / "total"

    @property
    def status_file(self) -> Path:
        return self.run_dir / "consumer-status.json"

    @property
    def metrics_dir(self) -> Path:
        return self.run_dir / "prometheus"
