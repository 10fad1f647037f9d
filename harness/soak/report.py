"""The soak's result: one JSON document (soak/results/latest.json, and a dated copy on request) and the
summary printed at the end."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import asdict
from pathlib import Path
from typing import Any

from localstack.results import result_stems
from soak.checker import Verdict
from soak.faults import KINDS, FaultRecord

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "soak" / "results"


def faults_summary(records: list[FaultRecord]) -> dict[str, Any]:
    """Per kind: how many were injected, how many this machine could not inject, and the slowest and
    median recovery in seconds."""
    by_kind: dict[str, list[float]] = defaultdict(list)
    not_injected: dict[str, int] = defaultdict(int)
    for record in records:
        if record.injected:
            by_kind[record.kind].append(record.recovered_after_s or 0.0)
        else:
            not_injected[record.kind] += 1
    summary = {}
    for kind in KINDS:
        times = sorted(by_kind.get(kind, []))
        summary[kind] = {
            "count": len(times),
            "not_injected": not_injected.get(kind, 0),
            "recovery_max_s": times[-1] if times else None,
            "recovery_median_s": times[len(times) // 2] if times else None,
        }
    return summary


def verdict_dict(verdict: Verdict) -> dict[str, Any]:
    return {
        **asdict(verdict),
        "total": str(verdict.total),
        "entries_total": str(verdict.entries_total),
        "ok": verdict.ok,
    }


def text(result: dict[str, Any]) -> str:
    c, load = result["check"], result["load"]
    lines = [
        f"seed {result['seed']} (replay: SOAK_SEED={result['seed']}), {result['duration_s']:.0f} s",
        f"Kafka security protocol by service: {result.get('kafka_security', 'not started')}",
        f"requests: {load['new_requests']} new ids, {load['duplicates_sent']} duplicates, "
        f"{load['conflicts_sent']} conflicting reuses; attempts by status {load['attempts_by_status']}",
        f"answers the contract does not allow: {load['disallowed_answers']} {load['disallowed_examples']}; "
        f"new requests never acknowledged: {load['unknown_outcomes']}",
        f"acknowledged {c['acknowledged']}, unknown outcome {c['unknown_outcome']} "
        f"(of which applied {c['unknown_applied']}), entries {c['entries']}",
        f"lost {c['lost']} (and {c['lost_with_log']} lost with a Kafka log, see docs/guarantees.md), "
        f"duplicated {c['duplicated']}, phantom {c['phantom']}, "
        f"conflicts counted {c['conflicts_counted']}, total {c['total']} "
        f"(matches entries: {c['total_matches_entries']}, total file matches: {c['total_file_matches']})",
        f"longest wait for an ack {load['longest_wait_for_ack_s']:.1f} s, "
        f"longest gap without any ack {load['longest_gap_without_ack_s']:.1f} s",
        "faults: "
        + ", ".join(
            f"{k} {v['count']} (recovery max {v['recovery_max_s']} s"
            + (f", {v['not_injected']} not injected here)" if v["not_injected"] else ")")
            for k, v in result["faults"].items()
        ),
    ]
    g = result.get("grpc_fuzz")
    if g is not None:
        lines.append(
            f"gRPC fuzz: {g['cases']} cases, statuses {g['codes']}, wrong answers {len(g['wrong'])}, "
            f"ledger check after it: {'ok' if g['check_ok'] else 'FAILED'}"
        )
    r = result.get("rest_fuzz")
    if r is not None:
        lines.append(f"REST fuzz: {r['requests']} requests, " + ("ok" if r["ok"] else "FAILED:"))
        lines += [f"  - {failure}" for failure in r["failures"]]
    errors = {k: sum(sum(m.values()) for m in v.values()) for k, v in result["error_log_lines"].items()}
    lines.append(f"error-level log lines by fault kind: {errors}")
    for where, messages in result.get("false_alarms", {}).items():
        lines += [f"  false alarm under {where}: {n} x {message!r}" for message, n in messages.items()]
    lines.append("RESULT: " + ("PASS" if result["ok"] else "FAIL: " + "; ".join(result["failures"])))
    return "\n".join(lines)


def write(result: dict[str, Any], keep: bool, results: Path = RESULTS) -> list[Path]:
    results.mkdir(parents=True, exist_ok=True)
    stems = result_stems(results, result["date"], keep)
    written = []
    for stem in stems:
        path = results / f"{stem}.json"
        path.write_text(json.dumps(result, indent=2) + "\n")
        written.append(path)
    return written
