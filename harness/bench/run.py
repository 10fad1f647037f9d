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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException

from bench import audit, audit_log_cost, ghz, ledger_rate, plot, report
from bench.actors import Actors
from bench.grpc_bench import GrpcBench, run_json, security_cost
from bench.progress import say
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


def _bench(s: BenchSettings, state: Path, ghz_bin: Path) -> dict[str, Any]:
    say(
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
        broker = stack.kafka.process_group
        grpc_bench = GrpcBench(
            ghz_bin,
            sum_svc.target,
            Actors(sum_svc.process.pid, ledger.process.pid, broker),
            client_tls,
            [],
            itertools.count(1),
        )
        rows = grpc_bench.measure(s)
        add_rps = max(row["add"]["rps"] for row in rows)
        say("the cost of mutual TLS: Add on the TLS and the plaintext sum service, in turns")
        plain_bench = GrpcBench(
            ghz_bin,
            plain_svc.target,
            Actors(plain_svc.process.pid, ledger.process.pid, broker),
            None,
            grpc_bench.sent,
            grpc_bench.run_ids,
        )
        tls_comparison = security_cost(grpc_bench, plain_bench, s)
        say("the cost of Kafka's TLS and client certificates: Add against a locked-down and an open Kafka")
        # No ledger reads the open Kafka: its events are never applied, and its "ledger" CPU is idle.
        open_kafka_bench = GrpcBench(
            ghz_bin,
            open_kafka_svc.target,
            Actors(open_kafka_svc.process.pid, ledger.process.pid, open_kafka.process_group),
            client_tls,
            [],
            grpc_bench.run_ids,
        )
        kafka_comparison = security_cost(grpc_bench, open_kafka_bench, s)

        say("waiting for the ledger to apply every acknowledged Add")
        ledger.client.wait_settled(sum(r.ok for r in grpc_bench.sent), sum(r.sent for r in grpc_bench.sent))
        lag_rps = max(1, round(add_rps / 2))
        lag_calls = max(report.HEADLINE_CONCURRENCY, lag_rps * s.lag_seconds)
        say(f"end-to-end lag: {lag_calls:,} Adds at {lag_rps:,} rps (half of add_rps)")
        lag_result, _ = grpc_bench.call(ghz.ADD, lag_calls, report.HEADLINE_CONCURRENCY, rps=lag_rps)
        lag_run = grpc_bench.sent[-1].run_id
        ledger.client.wait_settled(sum(r.ok for r in grpc_bench.sent), sum(r.sent for r in grpc_bench.sent))

        say("auditing the ledger's entries against the calls sent")
        total = ledger.total()
        entries = list(ledger.client.entries())
        checked = audit.audit(grpc_bench.sent, entries, total)
        lags = [audit.lag_ms(e) for e in entries if int(e["b"]) == lag_run]

        say(f"ledger apply rate: {s.events:,} events into topic {APPLY_TOPIC!r}, then a bare consumer")
        assert stack.kafka is not None
        create_event_topics(stack.kafka, APPLY_TOPIC, s.partitions)
        apply_dead_letters = LedgerSettings().dead_letters_for(APPLY_TOPIC)
        grant(
            admin_client(stack.bootstrap, tooling),
            service_grants(APPLY_TOPIC, apply_dead_letters, LOCAL_LEDGER_GROUPS),
        )
        filled_total = ledger_rate.fill_topic(stack.bootstrap, APPLY_TOPIC, s.events, tooling)
        raw_eps = ledger_rate.raw_consume_eps(stack.bootstrap, APPLY_TOPIC, s.events, security=tooling)
        say(f"raw consume floor {raw_eps:,.0f} events/s; now a fresh ledger on the same topic")
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
        "lag_run": {**run_json(lag_result), "target_rps": lag_rps},
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
        **report.at_headline(rows),
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
    say("building ghz (first run only) and verifying the Kafka jars")
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
