"""The soak's knobs, from SOAK_* environment variables (make passes them through), validated at start:
a bad value stops the run before anything starts, naming the variable and the rule it broke."""

from __future__ import annotations

import secrets
from typing import Annotated

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Count = Annotated[int, Field(ge=0, le=1000)]


class SoakSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SOAK_", extra="ignore", frozen=True)

    seed: Annotated[int, Field(ge=0)] = Field(default_factory=lambda: secrets.randbelow(2**32))
    requests: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000
    # The load is paced to spread the requests over this many minutes (the faults too). On a busy
    # machine the clients may need longer; they then send as fast as the stack answers.
    minutes: Annotated[float, Field(gt=0, le=24 * 60)] = 9.0
    clients: Annotated[int, Field(ge=1, le=256)] = 24
    duplicate_share: Annotated[float, Field(ge=0, le=0.5)] = 0.05
    conflict_share: Annotated[float, Field(ge=0, le=0.5)] = 0.01
    sum_kills: Count = 10
    ledger_kills: Count = 6
    consumer_kills: Count = 6
    broker_kills: Count = 3
    full_volumes: Count = 1
    log_restarts: Count = 1
    sum_pauses: Count = 3
    consumer_pauses: Count = 3
    broker_pauses: Count = 2
    grpc_fuzz_cases: Annotated[int, Field(ge=0, le=1_000_000)] = 10_000
    rest_fuzz_cases: Annotated[int, Field(ge=0, le=1_000_000)] = 2_000
    volume_mib: Annotated[int, Field(ge=16, le=65536)] = 256
    keep: bool = False  # also write soak/results/<date>.json

    @model_validator(mode="after")
    def _enough_requests(self) -> SoakSettings:
        if self.requests < self.clients:
            raise ValueError("SOAK_REQUESTS must be at least SOAK_CLIENTS")
        return self

    def fault_counts(self) -> dict[str, int]:
        return {
            "sum_kill": self.sum_kills,
            "ledger_kill": self.ledger_kills,
            "consumer_kill": self.consumer_kills,
            "broker_kill": self.broker_kills,
            "full_volume": self.full_volumes,
            "log_restart": self.log_restarts,
            "sum_pause": self.sum_pauses,
            "consumer_pause": self.consumer_pauses,
            "broker_pause": self.broker_pauses,
        }
