"""The bench's knobs, from BENCH_* environment variables (make passes them through), validated at start
like every setting of the project: a bad value stops the run naming the variable and the rule."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Service variables that change what is measured, recorded with the results when set. The bench sets the
# ports, hosts, directories and Kafka settings itself, and credentials never go into a results file.
_RECORDED_PREFIXES = ("SUM_", "LEDGER_", "OTEL_", "LOG_LEVEL")
_NOT_RECORDED = ("_PORT", "_HOST", "_DIR", "HEADERS", "TOKEN", "SECRET", "PASSWORD", "KEY", "CERTIFICATE")


class BenchSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BENCH_", extra="ignore", frozen=True, env_ignore_empty=True)

    calls_per_run: Annotated[int, Field(ge=1, validation_alias="BENCH_N")] = 10_000
    # "10,50,200": comma-separated, sorted and deduplicated.
    concurrency: Annotated[tuple[int, ...], NoDecode] = (10, 50, 200)
    rounds: Annotated[int, Field(ge=1)] = 3
    events: Annotated[int, Field(ge=1000)] = 100_000
    lag_seconds: Annotated[int, Field(ge=1)] = 20
    partitions: Annotated[int, Field(ge=1, validation_alias="DISTSUM_PARTITIONS")] = 6
    strict: bool = False
    keep: bool = False

    @field_validator("concurrency", mode="before")
    @classmethod
    def _comma_separated(cls, raw: object) -> object:
        if not isinstance(raw, str):
            return raw
        parts = [p.strip() for p in raw.split(",")]
        if not all(p.isdigit() and int(p) > 0 for p in parts):
            raise ValueError("must be positive integers separated by commas")
        return tuple(sorted({int(p) for p in parts}))

    @model_validator(mode="after")
    def _enough_calls(self) -> BenchSettings:
        if self.calls_per_run < max(self.concurrency):
            raise ValueError(f"BENCH_N must be at least the highest concurrency ({max(self.concurrency)})")
        return self

    def as_dict(self, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
        recorded = {
            k: v
            for k, v in sorted(env.items())
            if k.startswith(_RECORDED_PREFIXES) and not any(word in k for word in _NOT_RECORDED)
        }
        return {**self.model_dump(), "ghz": {"connections": 1, "timeout_s": 20}, "service_env": recorded}
