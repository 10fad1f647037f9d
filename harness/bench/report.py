"""The bench's results: per-concurrency summary, the headline keys, the targets, and the Markdown table."""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bench.ghz import GhzResult

HEADLINE_CONCURRENCY = 50

# What each headline key means; written into the JSON and the Markdown so the numbers explain themselves.
DEFINITIONS = {
    "add_rps": "Add calls acknowledged (OK) per second, over mutual TLS as deployed: the highest, over the "
    "concurrencies, of the median over rounds.",
    "bare_grpc_rps": "Health/Check calls (OK) per second on the same server and ghz settings: the highest, "
    "over the concurrencies, of the median over rounds (the bare gRPC floor).",
    "add_p99_ms": f"p99 latency of successful Add calls at concurrency {HEADLINE_CONCURRENCY}, the median "
    "over rounds.",
    "cpu_ms_per_add": "CPU milliseconds (utime+stime, /proc) of the sum service's process group over all "
    "measured Add runs, divided by the Add calls of those runs (every concurrency and round).",
    "cpu_ms_per_check": "The same for the Health/Check runs.",
    "cpu_ms_per_add_c50": f"CPU ms of the sum service per Add at concurrency {HEADLINE_CONCURRENCY}, the "
    "median over rounds (the ledger consumes meanwhile, as in service).",
    "cpu_ms_per_check_c50": "The same for Health/Check.",
    "ledger_cpu_ms_per_add": f"CPU ms of the ledger's process group (supervisor, consumer, REST workers) per "
    f"Add at concurrency {HEADLINE_CONCURRENCY}, over the same runs.",
    "broker_cpu_ms_per_add": "CPU ms of the Kafka broker's JVM per Add, over the same runs.",
    "system_cpu_ms_per_add": "Sum service + ledger + broker CPU ms per Add: what a deployment pays.",
    "load_cpu_ms_per_add": "CPU ms of ghz (the load generator) per Add, for scale; not part of the system.",
    "cpu_add_over_check_c50": "cpu_ms_per_add_c50 / cpu_ms_per_check_c50 (target <= 1.5).",
    "system_cpu_add_over_check_c50": "system_cpu_ms_per_add / cpu_ms_per_check_c50 (target <= 2.5).",
    "rps_add_over_check_c50": f"Add rps / Check rps at concurrency {HEADLINE_CONCURRENCY}, medians over "
    "rounds (target >= 0.6).",
    "p99_add_over_check_c50": "Add p99 / Check p99 at the same concurrency (target <= 2).",
    "tls_rps_ratio": "Add rps with mutual TLS / Add rps in plaintext, at concurrency "
    f"{HEADLINE_CONCURRENCY}: two sum services of the same stack measured in turns, median over rounds.",
    "tls_cpu_ratio": "CPU ms per Add with mutual TLS / CPU ms per Add in plaintext, in the same runs.",
    "kafka_tls_rps_ratio": "Add rps with Kafka locked down (TLS, a client certificate, ACLs) / Add rps "
    "against a plaintext Kafka, at concurrency "
    f"{HEADLINE_CONCURRENCY}: two sum services of the same run, each on its own broker, in turns.",
    "kafka_tls_cpu_ratio": "CPU ms per Add of the sum service with Kafka locked down / against a plaintext "
    "Kafka, in the same runs (the brokers' CPU is not counted).",
    "audit_log_us_per_call": "Microseconds an admitted call spends in the identity check and its aggregated "
    "audit line (distsum.tls.Admission, timed in the bench's process).",
    "ledger_apply_eps": "Events per second a fresh ledger applies into its store from a pre-filled topic "
    "(polled /v1/total count; start-up left out).",
    "raw_consume_eps": "Events per second a bare confluent-kafka consumer loop reads from the same topic "
    "(no decoding, no store; start-up left out).",
    "e2e_lag_p50_ms": "Median of applied_at - produced_at over the entries of the lag run (Add at half of "
    "add_rps, concurrency 50).",
    "e2e_lag_p99_ms": "p99 (nearest rank) of the same.",
    "lost": "Acknowledged Add calls with no entry in the ledger (must be 0).",
    "double_counted": "Entries for a call already applied, or for no call the bench sent (must be 0).",
    "unknown_outcome": "Add calls that failed (e.g. UNAVAILABLE): applied or not, either is correct.",
}


HEADLINE_KEYS = (
    "cpu_ms_per_add_c50",
    "cpu_ms_per_check_c50",
    "ledger_cpu_ms_per_add",
    "broker_cpu_ms_per_add",
    "system_cpu_ms_per_add",
    "load_cpu_ms_per_add",
    "cpu_add_over_check_c50",
    "system_cpu_add_over_check_c50",
    "rps_add_over_check_c50",
    "p99_add_over_check_c50",
    "service_threads_cpu_ms_per_add_c50",
)


@dataclass(frozen=True)
class Target:
    key: str
    rule: str
    measured: float | None
    limit: float | None
    passed: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "rule": self.rule,
            "measured": self.measured,
            "limit": self.limit,
            "pass": self.passed,
        }


def summarize(runs: Sequence[GhzResult], cpu_ms: Sequence[Mapping[str, float]]) -> dict[str, Any]:
    """Medians over the rounds of one call at one concurrency (runs and cpu_ms, each actor's CPU ms per
    call as bench.actors measures it, pair up)."""
    return {
        "rps": statistics.median(r.rps for r in runs),
        "p50_ms": statistics.median(r.p50_ms for r in runs),
        "p99_ms": statistics.median(r.p99_ms for r in runs),
        "cpu_ms_per_call": statistics.median(c["service"] for c in cpu_ms),
        "actors_cpu_ms_per_call": {actor: statistics.median(c[actor] for c in cpu_ms) for actor in cpu_ms[0]},
        "calls": sum(r.count for r in runs),
        "failed": sum(r.failed for r in runs),
    }


def at_headline(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The keys of issue 21 from the row at HEADLINE_CONCURRENCY (None where that row is missing)."""
    row = next((r for r in rows if r["concurrency"] == HEADLINE_CONCURRENCY), None)
    if row is None:
        return dict.fromkeys(HEADLINE_KEYS)
    add, check = row["add"], row["check"]
    actors = add["actors_cpu_ms_per_call"]
    return {
        "cpu_ms_per_add_c50": add["cpu_ms_per_call"],
        "cpu_ms_per_check_c50": check["cpu_ms_per_call"],
        "ledger_cpu_ms_per_add": actors["ledger"],
        "broker_cpu_ms_per_add": actors["broker"],
        "system_cpu_ms_per_add": actors["system"],
        "load_cpu_ms_per_add": actors["load"],
        "cpu_add_over_check_c50": add["cpu_ms_per_call"] / check["cpu_ms_per_call"],
        "system_cpu_add_over_check_c50": actors["system"] / check["cpu_ms_per_call"],
        "rps_add_over_check_c50": add["rps"] / check["rps"],
        "p99_add_over_check_c50": add["p99_ms"] / check["p99_ms"],
        "service_threads_cpu_ms_per_add_c50": {
            key.removeprefix("threads."): value for key, value in actors.items() if key.startswith("threads.")
        },
    }


def _at_most(key: str, measured: float | None, limit: float) -> Target:
    ok = measured is not None and not math.isnan(measured) and measured <= limit
    return Target(key, f"{key} <= {limit:g}", measured, limit, ok)


def _ratio_at_least(key: str, measured: float | None, limit: float) -> Target:
    ok = measured is not None and not math.isnan(measured) and measured >= limit
    return Target(key, f"{key} >= {limit:g}", measured, limit, ok)


def _at_least(key: str, measured: float | None, factor: float, of: str, other: float | None) -> Target:
    limit = None if other is None else factor * other
    ok = measured is not None and limit is not None and measured >= limit
    rule = f"{key} >= {factor:g} x {of}" if factor != 1 else f"{key} >= {of}"
    return Target(key, rule, measured, limit, ok)


def targets(h: dict[str, Any]) -> list[Target]:
    """The targets, each with the measured value and the limit it was held to: the Add path as ratios to
    a bare gRPC call on the same server in the same run (issue 21: absolute figures do not carry from one
    machine to the next), the end-to-end lag, and the ledger's rates (issue 11)."""
    return [
        _at_most("cpu_add_over_check_c50", h["cpu_add_over_check_c50"], 1.5),
        _at_most("system_cpu_add_over_check_c50", h["system_cpu_add_over_check_c50"], 2.5),
        _ratio_at_least("rps_add_over_check_c50", h["rps_add_over_check_c50"], 0.6),
        _at_most("p99_add_over_check_c50", h["p99_add_over_check_c50"], 2),
        _at_most("e2e_lag_p99_ms", h["e2e_lag_p99_ms"], 100),
        _at_least("ledger_apply_eps", h["ledger_apply_eps"], 0.3, "raw_consume_eps", h["raw_consume_eps"]),
        _at_least("ledger_apply_eps", h["ledger_apply_eps"], 1, "add_rps", h["add_rps"]),
    ]


def _num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.{digits}f}" if isinstance(value, float) else f"{value:,}"


def markdown(result: dict[str, Any]) -> str:
    """The table a person reads: per concurrency, then the headline keys, then the targets."""
    settings = result["settings"]
    lines = [
        f"# make bench, {result['date']}",
        "",
        f"Revision `{result['git']['revision']}`{' (dirty)' if result['git']['dirty'] else ''}; "
        f"{result['machine']['cpu_model']}, {result['machine']['cpus']} CPUs; "
        f"{settings['calls_per_run']:,} calls per ghz run, {settings['rounds']} round(s).",
        "",
        "| concurrency | Add rps | Add p50 ms | Add p99 ms | Add CPU ms/call | Check rps | Check p50 ms "
        "| Check p99 ms | Check CPU ms/call | Add failed |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["by_concurrency"]:
        add, check = row["add"], row["check"]
        cells = [row["concurrency"], add["rps"], add["p50_ms"], add["p99_ms"], add["cpu_ms_per_call"]]
        cells += [check["rps"], check["p50_ms"], check["p99_ms"], check["cpu_ms_per_call"], add["failed"]]
        digits = [0, 0, 1, 1, 3, 0, 1, 1, 3, 0]
        lines.append("| " + " | ".join(_num(c, d) for c, d in zip(cells, digits, strict=True)) + " |")
    lines += ["", "| key | value | definition |", "|---|---:|---|"]
    for key, definition in DEFINITIONS.items():
        places = 3 if "cpu" in key or "ratio" in key or "_over_" in key else 1
        places = 2 if key.endswith("_us_per_call") else places
        lines.append(f"| `{key}` | {_num(result[key], places)} | {definition} |")
    threads = result.get("service_threads_cpu_ms_per_add_c50") or {}
    if threads:
        lines += [
            "",
            f"| sum service CPU ms per Add at concurrency {HEADLINE_CONCURRENCY}, by thread | "
            + " | ".join(threads)
            + " |",
            "|---|" + "---:|" * len(threads),
            "| | " + " | ".join(_num(v, 3) for v in threads.values()) + " |",
        ]
    lines += [
        "",
        f"| Add at concurrency {HEADLINE_CONCURRENCY} | rps | p50 ms | p99 ms | CPU ms/call |",
        "|---|---:|---:|---:|---:|",
    ]
    comparisons = {
        "tls_comparison": ("mutual TLS", "plaintext"),
        "kafka_security_comparison": ("Kafka locked down", "Kafka in plaintext"),
    }
    for key, labels in comparisons.items():
        for name, label in zip(("tls", "plaintext"), labels, strict=True):
            row = result[key][name]
            cells = [_num(row["rps"], 0), _num(row["p50_ms"]), _num(row["p99_ms"])]
            cells.append(_num(row["cpu_ms_per_call"], 3))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "| target | measured | limit | result |", "|---|---:|---:|---|"]
    for t in result["targets"]:
        verdict = "pass" if t["pass"] else "**missed**"
        lines.append(f"| {t['rule']} | {_num(t['measured'], 3)} | {_num(t['limit'], 3)} | {verdict} |")
    return "\n".join(lines) + "\n"


def targets_text(result: dict[str, Any]) -> str:
    """The closing lines printed on the terminal."""
    lines = [
        f"{'pass  ' if t['pass'] else 'MISSED'}  {t['rule']}: measured {_num(t['measured'], 3)}, "
        f"limit {_num(t['limit'], 3)}"
        for t in result["targets"]
    ]
    missed = sum(not t["pass"] for t in result["targets"])
    lines.append("all targets met" if not missed else f"targets missed: {missed} of {len(result['targets'])}")
    return "\n".join(lines)
