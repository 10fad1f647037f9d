"""`make bench`: start the local stack, measure it, write bench/results/latest.{json,md,png}.

Exit status: 0 when the run completed and no event was lost or double-counted, whether or not the
targets were met (they are reported; BENCH_STRICT=1 makes a missed target exit 2); 1 on any lost or
double-counted event, an entry whose sum is not a + b, a total that disagrees with its entries, or a
tool or service failure.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from bench import audit, audit_log_cost, ghz, ledger_rate, plot, report
from bench.proc_cpu import group_ticks, ms_per_call
from bench.settings import BenchSettings
from distsum import settings as config
from ledger_svc.config import LedgerSettings
from localstack import results
from localstack.certificates import KafkaTls, LocalTls
from localstack.go_tools import go_tool
from localstack.kafka_acls import grant, service_grants
from localstack.kafka_broker import KafkaBroker, admin_client, ensure_kafka_libs
from localstack.stack import LOCAL_LEDGER_GROUPS, create_event_topics, local_stack

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench" / "results"
APPLY_TOPIC = "bench-apply"
WARMUP_CALLS = 1000


_T0 = time.monotonic()


def _say(message: str) -> None:
    print(f"==> [{time.monotonic() - _T0:5.0f} s] {message}", flush=True)


class GrpcBench:
    """ghz runs against one sum service, with its CPU read around each run. Benches of one stack share
    `sent` (and the run ids), which the ledger's entries are audited against."""

    def __init__(  # noqa: PLR0917 - the service measured, then what the benches of a stack share
        self,
        binary: Path,
        target: str,
        process_group: int,
        tls: ghz.ClientTls | None,
        sent: list[audit.SentRun],
        run_ids: Iterator[int],
    ):
        self.binary, self.target, self.process_group, self.tls = binary, target, process_group, tls
        self.sent, self.run_ids = sent, run_ids
        self.runs: list[dict[str, Any]] = []

    def call(
        self, method: str, calls: int, concurrency: int, rps: int | None = None
    ) -> tuple[ghz.GhzResult, float]:
        data = "{}"
        if method == ghz.ADD:
            run_id = next(self.run_ids)
            data = ghz.add_data(run_id)
        before = group_ticks(self.process_group)
        result = ghz.run(self.binary, self.target, method, data, calls, concurrency, rps, self.tls)
        cpu = ms_per_call(before, group_ticks(self.process_group), result.count)
        if method == ghz.ADD:
            self.sent.append(audit.SentRun(run_id, result.count, result.ok))
        return result, cpu

    def measure(self, s: BenchSettings) -> list[dict[str, Any]]:
        """Every concurrency, `rounds` times each call. Add and Check alternate which goes first, so a
        drift of the machine weighs on both alike."""
        self.call(ghz.CHECK, WARMUP_CALLS, 10)
        self.call(ghz.ADD, WARMUP_CALLS, 10)
        rows = []
        for concurrency in s.concurrency:
            measured: dict[str, list[tuple[ghz.GhzResult, float]]] = {ghz.ADD: [], ghz.CHECK: []}
            for round_ in range(s.rounds):
                for method in (ghz.CHECK, ghz.ADD) if round_ % 2 == 0 else (ghz.ADD, ghz.CHECK):
                    result, cpu = self.call(method, s.calls_per_run, concurrency)
                    measured[method].append((result, cpu))
                    self.runs.append({**_run_json(result), "cpu_ms_per_call": cpu, "round": round_ + 1})
                    _say(
                        f"{method} c={concurrency} round {round_ + 1}: {result.rps:,.0f} rps, "
                        f"p99 {result.p99_ms:.1f} ms, {cpu:.3f} CPU ms/call, {result.failed} failed"
                    )
            rows.append(
                {
                    "concurrency": concurrency,
                    "add": report.summarize(
                        [r for r, _ in measured[ghz.ADD]], [c for _, c in measured[ghz.ADD]]
                    ),
                    "check": report.summarize(
                        [r for r, _ in measured[ghz.CHECK]], [c for _, c in measured[ghz.CHECK]]
                    ),
                }
            )
        return rows

    def pooled_cpu_ms(self, method: str) -> float:
        runs = [r for r in self.runs if r["call"] == method]
        cpu_ms: float = sum(r["cpu_ms_per_call"] * r["count"] for r in runs)
        calls: int = sum(r["count"] for r in runs)
        return cpu_ms / calls


def security_cost(secured: GrpcBench, plaintext: GrpcBench, s: BenchSettings) -> dict[str, Any]:
    """Add at the headline concurrency on two sum services of one run that differ in one link's
    security, alternating which goes first each round so that a drift of the machine weighs on both
    alike. Keys `tls` (secured) and `plaintext`, and the ratios of the first to the second."""
    benches = {"tls": secured, "plaintext": plaintext}
    measured: dict[str, list[tuple[ghz.GhzResult, float]]] = {name: [] for name in benches}
    plaintext.call(ghz.ADD, WARMUP_CALLS, 10)
    for round_ in range(s.rounds):
        for name in ("tls", "plaintext") if round_ % 2 == 0 else ("plaintext", "tls"):
            result, cpu = benches[name].call(ghz.ADD, s.calls_per_run, report.HEADLINE_CONCURRENCY)
            measured[name].append((result, cpu))
            _say(f"Add with {name} round {round_ + 1}: {result.rps:,.0f} rps, {cpu:.3f} CPU ms/call")
    summary = {
        name: report.summarize([r for r, _ in runs], [c for _, c in runs]) for name, runs in measured.items()
    }
    return {
        **summary,
        "rps_ratio": summary["tls"]["rps"] / summary["plaintext"]["rps"],
        "cpu_ratio": summary["tls"]["cpu_ms_per_call"] / summary["plaintext"]["cpu_ms_per_call"],
    }


def _run_json(result: ghz.GhzResult) -> dict[str, Any]:
    return {
        "call": result.call,
        "concurrency": result.concurrency,
        "count": result.count,
        "ok": result.ok,
        "status_codes": result.status_codes,
        "seconds": result.seconds,
        "rps": result.rps,
        "p50_ms": result.p50_ms,
        "p99_ms": result.p99_ms,
    }


def _bench(s: BenchSettings, state: Path, ghz_bin: Path) -> dict[str, Any]:
    _say(
        "starting Kafka locked down, the sum service (mutual TLS, and a plaintext one to compare), the ledger"
    )
    tls = LocalTls(state / "tls")
    with local_stack(
        state, partitions=s.partitions, tls=tls, kafka_tls=KafkaTls(state / "kafka-tls")
    ) as stack:
        assert isinstance(stack.kafka, KafkaBroker)
        tooling = stack.kafka.client_security
        sum_svc = stack.sum_service()
        plain_svc = stack.sum_service("sum-plaintext", plaintext=True)
        # The same sum service on a plaintext Kafka of its own (same settings otherwise), to compare.
        open_kafka = stack.resources.enter_context(
            KafkaBroker(ensure_kafka_libs(), state / "kafka-plaintext")
        )
        create_event_topics(open_kafka, stack.topic, s.partitions)
        open_kafka_svc = dataclasses.replace(
            stack, bootstrap=open_kafka.bootstrap, kafka=open_kafka, kafka_tls=None
        ).sum_service("sum-kafka-plaintext")
        ledger = stack.ledger(
            "ledger", env={"LEDGER_GROUP_ID": "distsum-ledger", "LEDGER_GROUP_INSTANCE_ID": "ledger"}
        )
        client_tls = ghz.ClientTls(tls.ca_file, tls.client_cert_file, tls.client_key_file)
        grpc_bench = GrpcBench(
            ghz_bin, sum_svc.target, sum_svc.process.pid, client_tls, [], itertools.count(1)
        )
        rows = grpc_bench.measure(s)
        add_rps = max(row["add"]["rps"] for row in rows)
        _say("the cost of mutual TLS: Add on the TLS and the plaintext sum service, in turns")
        plain_bench = GrpcBench(
            ghz_bin, plain_svc.target, plain_svc.process.pid, None, grpc_bench.sent, grpc_bench.run_ids
        )
        tls_comparison = security_cost(grpc_bench, plain_bench, s)
        _say("the cost of Kafka's TLS and client certificates: Add against a locked-down and an open Kafka")
        open_kafka_bench = GrpcBench(
            ghz_bin, open_kafka_svc.target, open_kafka_svc.process.pid, client_tls, [], grpc_bench.run_ids
        )
        kafka_comparison = security_cost(grpc_bench, open_kafka_bench, s)

        _say("waiting for the ledger to apply every acknowledged Add")
        ledger.client.wait_settled(sum(r.ok for r in grpc_bench.sent), sum(r.sent for r in grpc_bench.sent))
        lag_rps = max(1, round(add_rps / 2))
        lag_calls = max(report.HEADLINE_CONCURRENCY, lag_rps * s.lag_seconds)
        _say(f"end-to-end lag: {lag_calls:,} Adds at {lag_rps:,} rps (half of add_rps)")
        lag_result, _ = grpc_bench.call(ghz.ADD, lag_calls, report.HEADLINE_CONCURRENCY, rps=lag_rps)
        lag_run = grpc_bench.sent[-1].run_id
        ledger.client.wait_settled(sum(r.ok for r in grpc_bench.sent), sum(r.sent for r in grpc_bench.sent))

        _say("auditing the ledger's entries against the calls sent")
        total = ledger.total()
        entries = list(ledger.client.entries())
        checked = audit.audit(grpc_bench.sent, entries, total)
        lags = [audit.lag_ms(e) for e in entries if int(e["b"]) == lag_run]

        _say(f"ledger apply rate: {s.events:,} events into topic {APPLY_TOPIC!r}, then a bare consumer")
        assert stack.kafka is not None
        create_event_topics(stack.kafka, APPLY_TOPIC, s.partitions)
        apply_dead_letters = LedgerSettings().dead_letters_for(APPLY_TOPIC)
        grant(
            admin_client(stack.bootstrap, tooling),
            service_grants(APPLY_TOPIC, apply_dead_letters, LOCAL_LEDGER_GROUPS),
        )
        filled_total = ledger_rate.fill_topic(stack.bootstrap, APPLY_TOPIC, s.events, tooling)
        raw_eps = ledger_rate.raw_consume_eps(stack.bootstrap, APPLY_TOPIC, s.events, security=tooling)
        _say(f"raw consume floor {raw_eps:,.0f} events/s; now a fresh ledger on the same topic")
        # Polled from its start, not from /readyz: a ledger can apply a small topic before it reports ready.
        apply_ledger = dataclasses.replace(stack, topic=APPLY_TOPIC).ledger(
            "apply-ledger",
            wait=False,
            env={"LEDGER_GROUP_ID": "distsum-apply-ledger", "LEDGER_GROUP_INSTANCE_ID": "apply-ledger"},
        )
        apply_eps = ledger_rate.apply_eps(lambda: ledger_rate.count_once_up(apply_ledger.client), s.events)
        apply_total = apply_ledger.total()
        apply_exact = int(str(apply_total["total"])) == filled_total and apply_total["count"] == s.events

    return {
        "by_concurrency": rows,
        "runs": grpc_bench.runs,
        "lag_run": {**_run_json(lag_result), "target_rps": lag_rps},
        "audit": checked,
        "lags": lags,
        "raw_consume_eps": raw_eps,
        "ledger_apply_eps": apply_eps,
        "apply_ledger_exact": apply_exact,
        "cpu_ms_per_add": grpc_bench.pooled_cpu_ms(ghz.ADD),
        "cpu_ms_per_check": grpc_bench.pooled_cpu_ms(ghz.CHECK),
        "tls_comparison": tls_comparison,
        "kafka_security_comparison": kafka_comparison,
        "audit_log_us_per_call": audit_log_cost.admitted_call_us(),
    }


def _result(
    s: BenchSettings, measured: dict[str, Any], started: datetime, ghz_bin: Path, libs: Path
) -> dict[str, Any]:
    rows = measured["by_concurrency"]
    at_headline = [row for row in rows if row["concurrency"] == report.HEADLINE_CONCURRENCY]
    checked: audit.Audit = measured["audit"]
    lags = measured["lags"]
    result: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "duration_s": round((datetime.now(UTC) - started).total_seconds()),
        "git": results.git(ROOT),
        "machine": results.machine(),
        "versions": results.versions(ghz_bin, libs),
        "settings": s.as_dict(),
        "definitions": report.DEFINITIONS,
        "add_rps": max(row["add"]["rps"] for row in rows),
        "bare_grpc_rps": max(row["check"]["rps"] for row in rows),
        "add_p99_ms": at_headline[0]["add"]["p99_ms"] if at_headline else None,
        "cpu_ms_per_add": measured["cpu_ms_per_add"],
        "cpu_ms_per_check": measured["cpu_ms_per_check"],
        "tls_rps_ratio": measured["tls_comparison"]["rps_ratio"],
        "tls_cpu_ratio": measured["tls_comparison"]["cpu_ratio"],
        "kafka_tls_rps_ratio": measured["kafka_security_comparison"]["rps_ratio"],
        "kafka_tls_cpu_ratio": measured["kafka_security_comparison"]["cpu_ratio"],
        "audit_log_us_per_call": measured["audit_log_us_per_call"],
        "ledger_apply_eps": measured["ledger_apply_eps"],
        "raw_consume_eps": measured["raw_consume_eps"],
        "e2e_lag_p50_ms": audit.percentile(lags, 50) if lags else None,
        "e2e_lag_p99_ms": audit.percentile(lags, 99) if lags else None,
        "lost": checked.lost,
        "double_counted": checked.double_counted,
        "unknown_outcome": checked.unknown_outcome,
        "entries_applied": checked.applied,
        "total_matches_entries": checked.total_matches_entries,
        "wrong_sums": checked.wrong_sums,
        "apply_ledger_exact": measured["apply_ledger_exact"],
        "by_concurrency": rows,
        "lag_run": measured["lag_run"],
        "tls_comparison": measured["tls_comparison"],
        "kafka_security_comparison": measured["kafka_security_comparison"],
        "runs": measured["runs"],
    }
    result["targets"] = [t.as_dict() for t in report.targets(result)]
    result["targets_met"] = all(t["pass"] for t in result["targets"])
    return result


def _write(result: dict[str, Any], keep: bool) -> list[Path]:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stems = results.result_stems(RESULTS, result["date"], keep)
    written = []
    for stem in stems:
        (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
        (RESULTS / f"{stem}.md").write_text(report.markdown(result))
        plot.plot(result, RESULTS / f"{stem}.png")
        written += [RESULTS / f"{stem}.{ext}" for ext in ("json", "md", "png")]
    return written


def main() -> int:
    s = config.load(BenchSettings)  # a bad setting stops here (exit 1), naming the variable
    # SIGTERM unwinds like Ctrl-C, so every process started is stopped on the way out.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = datetime.now(UTC)
    state = ROOT / ".run" / "bench"
    shutil.rmtree(state, ignore_errors=True)
    _say("building ghz (first run only) and verifying the Kafka jars")
    ghz_bin, libs = go_tool("ghz"), ensure_kafka_libs()
    try:
        measured = _bench(s, state, ghz_bin)
    except (RuntimeError, AssertionError, KafkaException) as exc:  # ghz, a service, Kafka or a wait
        print(f"!! bench failed: {exc}\n   logs: {state / 'logs'}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # everything started is stopped by now
        print("!! interrupted", file=sys.stderr)
        return 130
    result = _result(s, measured, started, ghz_bin, libs)
    written = _write(result, s.keep)
    print(report.markdown(result))
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))
    print(report.targets_text(result))
    exact = result["total_matches_entries"] and result["apply_ledger_exact"]
    if result["lost"] or result["double_counted"] or result["wrong_sums"] or not exact:
        print(
            f"!! FAILED: lost {result['lost']}, double-counted {result['double_counted']}, "
            f"wrong sums {result['wrong_sums']}, total matches entries: {exact}",
            file=sys.stderr,
        )
        return 1
    if s.strict and not result["targets_met"]:
        print("!! BENCH_STRICT=1 and targets were missed", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
