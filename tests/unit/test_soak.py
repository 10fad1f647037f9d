"""The soak's pure parts: the checker's rules (property-based), the fault schedule, log attribution,
settings and the clients' UUID spellings."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distsum import settings as config
from distsum.domain import canonical_request_id
from soak import checker, faults, logscan, readback, report
from soak.checker import Sent
from soak.clients import spelling
from soak.settings import SoakSettings

operands = st.integers(-(10**12), 10**12)


def entry(request_id: str, a: int, b: int, total: int | None = None) -> dict[str, Any]:
    return {"request_id": request_id, "a": str(a), "b": str(b), "sum": str(a + b if total is None else total)}


def outcome(entries: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    total = sum(int(e["sum"]) for e in entries)
    return {"total": str(total), "count": len(entries)}, f"{total}\n"


@st.composite
def histories(draw: st.DrawFn) -> tuple[dict[str, Sent], list[dict[str, Any]]]:
    """What clients sent, and a ledger that applied it correctly: every acknowledged id once, some
    unknown-outcome ids once, in any order."""
    sent: dict[str, Sent] = {}
    applied = []
    for _ in range(draw(st.integers(0, 30))):
        rid = str(draw(st.uuids()))
        if rid in sent:
            continue
        s = Sent(draw(operands), draw(operands), draw(st.booleans()))
        if s.acknowledged and draw(st.booleans()):
            s.conflicts.add((s.a + draw(st.integers(1, 5)), s.b))
        sent[rid] = s
        if s.acknowledged or draw(st.booleans()):
            applied.append(entry(rid, s.a, s.b))
    return sent, draw(st.permutations(applied))


@given(histories())
def test_a_correct_ledger_passes(history: tuple[dict[str, Sent], list[dict[str, Any]]]) -> None:
    sent, entries = history
    verdict = checker.check(sent, entries, *outcome(entries))
    assert verdict.ok, verdict
    assert verdict.acknowledged + verdict.unknown_outcome == len(sent)
    assert verdict.unknown_applied == len(entries) - verdict.acknowledged


@given(histories(), st.data())
def test_dropping_an_acknowledged_entry_is_lost(
    history: tuple[dict[str, Sent], list[dict[str, Any]]], data: st.DataObject
) -> None:
    sent, entries = history
    acked = [i for i, e in enumerate(entries) if sent[e["request_id"]].acknowledged]
    if not acked:
        return
    dropped = entries.pop(data.draw(st.sampled_from(acked)))
    verdict = checker.check(sent, entries, *outcome(entries))
    assert (verdict.lost, verdict.duplicated, verdict.phantom) == (1, 0, 0)
    assert verdict.examples["lost"] == [dropped["request_id"]]
    assert not verdict.ok


@given(histories(), st.data())
def test_an_entry_applied_twice_is_duplicated(
    history: tuple[dict[str, Sent], list[dict[str, Any]]], data: st.DataObject
) -> None:
    sent, entries = history
    if not entries:
        return
    entries.insert(data.draw(st.integers(0, len(entries))), data.draw(st.sampled_from(entries)))
    verdict = checker.check(sent, entries, *outcome(entries))
    assert (verdict.lost, verdict.duplicated, verdict.phantom) == (0, 1, 0)
    assert not verdict.ok


@given(histories(), st.uuids(), operands, operands)
def test_an_id_never_sent_is_phantom(
    history: tuple[dict[str, Sent], list[dict[str, Any]]], rid: uuid.UUID, a: int, b: int
) -> None:
    sent, entries = history
    if str(rid) in sent:
        return
    entries.append(entry(str(rid), a, b))
    verdict = checker.check(sent, entries, *outcome(entries))
    assert verdict.phantom == 1 and not verdict.ok


def test_operands_never_sent_or_a_wrong_sum_are_phantom() -> None:
    sent = {"x": Sent(1, 2, acknowledged=True)}
    for bad in (entry("x", 1, 3), entry("x", 1, 2, total=4)):
        verdict = checker.check(sent, [bad], *outcome([bad]))
        assert verdict.phantom == 1 and verdict.lost == 1 and not verdict.ok


def test_a_conflicting_reuse_applied_is_counted_and_the_original_lost() -> None:
    sent = {"x": Sent(1, 2, acknowledged=True, conflicts={(5, 2)})}
    entries = [entry("x", 5, 2)]
    verdict = checker.check(sent, entries, *outcome(entries))
    assert (verdict.conflicts_counted, verdict.lost, verdict.phantom) == (1, 1, 0)
    assert not verdict.ok


@given(histories(), st.integers(1, 10))
def test_totals_must_agree(history: tuple[dict[str, Sent], list[dict[str, Any]]], off: int) -> None:
    sent, entries = history
    total, file = outcome(entries)
    bad_total = {**total, "total": str(int(total["total"]) + off)}
    assert not checker.check(sent, entries, bad_total, file).total_matches_entries
    assert not checker.check(sent, entries, total, f"{int(total['total']) + off}\n").total_file_matches
    assert not checker.check(sent, entries, total, None).ok


def test_the_schedule_has_every_fault_once_per_count_in_order_within_the_window() -> None:
    counts = {"sum_kill": 3, "broker_kill": 2, "log_restart": 1}
    plan = faults.schedule(counts, 100.0, random.Random(7))
    assert sorted(k for _, k in plan) == sorted(k for k, n in counts.items() for _ in range(n))
    offsets = [t for t, _ in plan]
    assert offsets == sorted(offsets) and offsets[0] > 0 and offsets[-1] < 100
    assert plan == faults.schedule(counts, 100.0, random.Random(7)), "a seed replays its schedule"


def test_error_lines_go_to_the_fault_whose_window_holds_them() -> None:
    def line(ts: str, level: str, msg: str) -> str:
        return json.dumps({"ts": ts, "level": level, "msg": msg})

    lines = [
        line("2026-01-01T00:00:01.000+00:00", "error", "kafka down"),
        line("2026-01-01T00:00:01.500+00:00", "warning", "slow"),
        line("2026-01-01T00:01:00.000+00:00", "critical", "late"),
        "Traceback (most recent call last):",
    ]
    found = logscan.error_lines(lines)
    assert [m for _, m in found] == ["kafka down", "late"]
    start = found[0][0] - 0.5
    table = logscan.attribute({"sum-svc-1": found}, [("broker_kill", start, start + 10)])
    assert table == {"broker_kill": {"sum-svc-1": {"kafka down": 1}}, "no_fault": {"sum-svc-1": {"late": 1}}}


@given(st.uuids(), st.randoms())
def test_every_spelling_is_the_same_request(rid: uuid.UUID, rng: random.Random) -> None:
    assert canonical_request_id(spelling(str(rid), rng)) == str(rid)


def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOAK_REQUESTS", "ten")
    monkeypatch.setenv("SOAK_DUPLICATE_SHARE", "2")
    with pytest.raises(config.ConfigurationError) as error:
        config.load(SoakSettings)
    assert "SOAK_REQUESTS" in str(error.value) and "SOAK_DUPLICATE_SHARE" in str(error.value)


def test_a_seed_is_drawn_when_none_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOAK_SEED", raising=False)
    assert 0 <= config.load(SoakSettings).seed < 2**32
    monkeypatch.setenv("SOAK_SEED", "42")
    assert config.load(SoakSettings).seed == 42


def test_an_id_at_risk_from_a_log_restart_lost_is_reported_apart() -> None:
    sent = {"x": Sent(1, 2, acknowledged=True, at_risk=True), "y": Sent(3, 4, acknowledged=True)}
    entries = [entry("y", 3, 4)]
    verdict = checker.check(sent, entries, *outcome(entries))
    assert (verdict.lost, verdict.lost_with_log) == (0, 1)
    assert verdict.examples == {"lost_with_log": ["x"]}
    assert verdict.ok


def test_a_log_restart_or_deleted_records_reported_where_no_fault_caused_them_is_a_false_alarm(
    tmp_path: Path,
) -> None:
    restart = "the Kafka log of a partition is not the one the store's offsets belong to; reading it again"
    deleted = "Kafka deleted records the ledger never read (retention); they are not in the total"

    def line(second: int, level: str, msg: str) -> str:
        return json.dumps({"ts": f"2026-01-01T00:00:{second:02d}.000+00:00", "level": level, "msg": msg})

    log = tmp_path / "ledger.log"
    log.write_text(
        "\n".join(
            [
                line(1, "warning", restart),  # under log_restart: what that fault causes
                line(20, "warning", restart),  # under broker_kill: false
                line(21, "error", deleted),  # never caused by any fault
                line(22, "warning", "partitions paused until Kafka shows which log it serves"),
            ]
        )
    )
    t0 = datetime(2026, 1, 1, tzinfo=UTC).timestamp()
    windows = [("log_restart", t0, t0 + 10), ("broker_kill", t0 + 15, t0 + 25)]
    alarms = logscan.scan({"ledger": log}, windows, logscan.alarm_lines)
    assert logscan.false_alarms(alarms) == {"broker_kill / ledger": {restart: 1, deleted: 1}}


@pytest.mark.parametrize(
    ("kind", "code", "first_attempt", "conflict_accepted", "stopping", "allowed"),
    [
        ("new", "OK", True, False, False, True),
        ("new", "UNAVAILABLE", True, False, False, True),
        ("new", "DEADLINE_EXCEEDED", False, False, False, True),
        ("new", "REPLAYED", False, False, False, True),  # a retry of what was published before
        ("new", "REPLAYED", True, False, False, False),  # a fresh id cannot be a replay
        ("new", "ALREADY_EXISTS", False, False, False, False),  # a fresh id is never a conflict
        ("duplicate", "ALREADY_EXISTS", True, False, False, False),
        ("duplicate", "ALREADY_EXISTS", True, True, False, True),  # a replica took the reuse first
        ("conflict", "ALREADY_EXISTS", True, False, False, True),
        ("conflict", "OK", True, False, False, True),  # the other replica did not know the id
        ("new", "CANCELLED", False, False, False, False),
        ("new", "CANCELLED", False, False, True, True),
        ("new", "INTERNAL", True, False, False, False),
        ("new", "UNKNOWN", True, False, False, False),
        ("duplicate", "WRONG_SUM", True, False, False, False),
        ("new", "INVALID_ARGUMENT", True, False, False, False),
    ],
)
def test_every_answer_is_judged_by_the_contract(  # noqa: PLR0917
    kind: str, code: str, first_attempt: bool, conflict_accepted: bool, stopping: bool, allowed: bool
) -> None:
    sent = Sent(1, 2, conflict_accepted=conflict_accepted)
    assert checker.answer_allowed(kind, code, sent, first_attempt=first_attempt, stopping=stopping) is allowed


def test_a_fault_this_machine_cannot_inject_is_reported_and_not_counted() -> None:
    records = [
        faults.FaultRecord("full_volume", "ledger volume", 1.0, 0.0, "not injected: a dir", injected=False),
        faults.FaultRecord("sum_kill", "sum-svc-1", 2.0, 1.5),
    ]
    summary = report.faults_summary(records)
    assert (summary["full_volume"]["count"], summary["full_volume"]["not_injected"]) == (0, 1)
    assert (summary["sum_kill"]["count"], summary["sum_kill"]["recovery_max_s"]) == (1, 1.5)


def test_settling_waits_for_the_log_end_offsets_to_be_consumed_and_stay_put() -> None:
    applied = iter([{0: 3, 1: 5}, {0: 5, 1: 5}, {0: 6, 1: 5}])
    ends = iter([{0: 5, 1: 5}, {0: 6, 1: 5}, {0: 6, 1: 5}])
    current: dict[str, dict[int, int]] = {}

    def next_applied() -> dict[int, int]:
        current["applied"] = next(applied)
        return current["applied"]

    # Behind on partition 0; caught up, but a late event moved the end; caught up again and the end held.
    assert readback.wait_consumed(next_applied, lambda: next(ends), timeout=5) == {0: 6, 1: 5}
    assert current["applied"] == {0: 6, 1: 5}


def test_settling_names_the_partitions_still_behind() -> None:
    with pytest.raises(RuntimeError, match=r"\{1: \(2, 9\)\}"):
        readback.wait_consumed(lambda: {0: 4, 1: 2}, lambda: {0: 4, 1: 9}, timeout=0.3)
