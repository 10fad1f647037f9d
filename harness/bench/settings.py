"""The bench's knobs, from BENCH_* environment variables (make passes them through)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

# Service variables that change what is measured, recorded with the results when set. The bench sets the
# ports, hosts, directories and Kafka settings itself, and credentials never go into a results file.
_RECORDED_PREFIXES = ("SUM_", "LEDGER_", "OTEL_", "LOG_LEVEL")
_NOT_RECORDED = ("_PORT", "_HOST", "_DIR", "HEADERS", "TOKEN", "SECRET", "PASSWORD", "KEY", "CERTIFICATE")


class BadSetting(SystemExit):
    pass


def _int(env: Mapping[str, str], name: str, default: int, low: int) -> int:
    raw = env.get(name, "").strip() or str(default)
    if not raw.isdigit() or int(raw) < low:
        raise BadSetting(f"{name}={raw!r} must be an integer >= {low}")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    calls_per_run: int
    concurrency: tuple[int, ...]
    rounds: int
    events: int
    lag_seconds: int
    partitions: int
    strict: bool
    keep: bool

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> Settings:
        raw = env.get("BENCH_CONCURRENCY", "").strip() or "10,50,200"
        parts = [p.strip() for p in raw.split(",")]
        if not all(p.isdigit() and int(p) > 0 for p in parts):
            raise BadSetting(f"BENCH_CONCURRENCY={raw!r} must be positive integers separated by commas")
        concurrency = tuple(sorted({int(p) for p in parts}))
        calls = _int(env, "BENCH_N", 10_000, 1)
        if calls < max(concurrency):
            raise BadSetting(f"BENCH_N={calls} must be at least the highest concurrency ({max(concurrency)})")
        return cls(
            calls_per_run=calls,
            concurrency=concurrency,
            rounds=_int(env, "BENCH_ROUNDS", 3, 1),
            events=_int(env, "BENCH_EVENTS", 100_000, 1000),
            lag_seconds=_int(env, "BENCH_LAG_SECONDS", 20, 1),
            partitions=_int(env, "DISTSUM_PARTITIONS", 6, 1),
            strict=env.get("BENCH_STRICT", "") == "1",
            keep=env.get("BENCH_KEEP", "") == "1",
        )

    def as_dict(self, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
        recorded = {
            k: v
            for k, v in sorted(env.items())
            if k.startswith(_RECORDED_PREFIXES) and not any(word in k for word in _NOT_RECORDED)
        }
        return {**asdict(self), "ghz": {"connections": 1, "timeout_s": 20}, "service_env": recorded}
