"""What the ledger holds after the load, read through its public REST API only.

Each ghz run sends a = request number (0..n-1) and b = run id, so every applied entry names the call it
came from. Lost: acknowledged calls of a run that have no entry. Double-counted: entries for a call
already applied (same run and number, or same request_id), or for no call the bench sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class SentRun:
    run_id: int
    sent: int
    ok: int


@dataclass(frozen=True)
class Audit:
    applied: int
    lost: int
    double_counted: int
    unknown_outcome: int
    total_matches_entries: bool
    wrong_sums: int  # entries whose sum is not a + b


def audit(runs: list[SentRun], applied: Sequence[Mapping[str, Any]], total: Mapping[str, Any]) -> Audit:
    """Check the entries against what was sent and acknowledged, each entry's sum against its operands,
    and the total against the entries.

    A call that failed (UNAVAILABLE, DEADLINE_EXCEEDED, ...) may or may not have been applied, and ghz
    does not say which number it had; such calls are reported as unknown outcome, and a run with some
    counts as lost only the acknowledged calls that even its best case cannot account for."""
    sent = {r.run_id: r for r in runs}
    calls: set[tuple[int, int]] = set()
    ids: set[str] = set()
    double = 0
    for entry in applied:
        call = (int(entry["b"]), int(entry["a"]))
        run = sent.get(call[0])
        if call in calls or entry["request_id"] in ids or run is None or not 0 <= call[1] < run.sent:
            double += 1
        calls.add(call)
        ids.add(entry["request_id"])
    wrong = sum(1 for e in applied if int(e["sum"]) != int(e["a"]) + int(e["b"]))
    distinct = Counter(r for r, a in calls if r in sent and 0 <= a < sent[r].sent)
    lost = sum(max(0, run.ok - distinct[run.run_id]) for run in runs)
    entries_total = sum(int(e["sum"]) for e in applied)
    matches = int(total["total"]) == entries_total and int(total["count"]) == len(applied)
    return Audit(
        applied=len(applied),
        lost=lost,
        double_counted=double,
        unknown_outcome=sum(r.sent - r.ok for r in runs),
        total_matches_entries=matches,
        wrong_sums=wrong,
    )


def lag_ms(entry: Mapping[str, Any]) -> float:
    """produced_at (the sum service's clock) to applied_at (the ledger's commit), one machine, ms."""
    produced = datetime.fromisoformat(entry["produced_at"])
    applied = datetime.fromisoformat(entry["applied_at"])
    return (applied - produced).total_seconds() * 1000


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (the value at or above pct % of the sample)."""
    if not values:
        raise ValueError("no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]
