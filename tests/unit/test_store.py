"""The SQLite ledger store, on real files."""

from __future__ import annotations

import sqlite3
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distsum.domain import INT64_MAX, INT64_MIN, SumComputed, add_int64
from ledger_svc.domain.ledger import Balance, Delivery, PoisonRecord
from ledger_svc.store.reader import LedgerReader
from ledger_svc.store.schema import STORE_FILE
from ledger_svc.store.writer import LedgerWriter, StoreRefused

TOPIC = "sums"
PRODUCED_AT = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def request_id(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012x}"


def delivery(n: int, a: int, b: int, offset: int | None = None, partition: int = 0) -> Delivery:
    event = SumComputed(request_id(n), a, b, add_int64(a, b), PRODUCED_AT)
    return Delivery(event, TOPIC, partition, n if offset is None else offset)


def reopen(writer: LedgerWriter, data_dir: Path) -> LedgerWriter:
    writer.close()
    return LedgerWriter.open_or_create(data_dir)


def next_offsets(writer: LedgerWriter, topic: str) -> dict[int, int]:
    return {partition: c.next_offset for partition, c in writer.checkpoints(topic).items()}


def sql(data_dir: Path, statement: str) -> None:
    connection = sqlite3.connect(data_dir / STORE_FILE)
    try:
        connection.execute(statement)
        connection.commit()
    finally:
        connection.close()


def test_open_or_create_on_an_empty_dir_creates_an_empty_ledger(data_dir: Path) -> None:
    writer = LedgerWriter.open_or_create(data_dir)
    try:
        assert (data_dir / STORE_FILE).is_file()
        assert writer.balance() == Balance(0, 0)
        assert next_offsets(writer, TOPIC) == {}
        assert not (data_dir / (STORE_FILE + ".creating")).exists()
    finally:
        writer.close()


def test_commit_batch_applies_new_events(writer: LedgerWriter, data_dir: Path) -> None:
    plan = writer.commit_batch([delivery(1, 2, 3), delivery(2, -10, 4)], [], {(TOPIC, 0): (2, b"k")})
    assert [d.event.request_id for d in plan.to_apply] == [request_id(1), request_id(2)]
    assert writer.balance() == Balance(total=-1, count=2)
    assert LedgerReader(data_dir).snapshot().balance == Balance(total=-1, count=2)


def test_duplicates_across_batches_are_not_applied_twice(writer: LedgerWriter) -> None:
    writer.commit_batch([delivery(1, 2, 3)], [], {(TOPIC, 0): (1, b"k")})
    plan = writer.commit_batch([delivery(1, 2, 3, offset=7), delivery(2, 1, 1)], [], {(TOPIC, 0): (8, b"k")})
    assert [d.offset for d in plan.duplicates] == [7]
    assert [d.event.request_id for d in plan.to_apply] == [request_id(2)]
    assert writer.balance() == Balance(total=7, count=2)


def test_conflict_across_batches_keeps_the_first_operands(writer: LedgerWriter, data_dir: Path) -> None:
    writer.commit_batch([delivery(1, 2, 3)], [], {})
    plan = writer.commit_batch([delivery(1, 100, 100)], [], {})
    assert len(plan.conflicts) == 1
    assert writer.balance() == Balance(total=5, count=1)
    (entry,) = LedgerReader(data_dir).entries(after=0, limit=10)
    assert (entry.a, entry.b, entry.sum) == (2, 3, 5)


def test_offsets_are_stored_per_topic_and_partition(writer: LedgerWriter) -> None:
    writer.commit_batch([], [], {(TOPIC, 0): (5, b"k"), (TOPIC, 1): (3, b"k"), ("other", 0): (9, b"k")})
    writer.commit_batch([], [], {(TOPIC, 1): (4, b"k")})
    assert next_offsets(writer, TOPIC) == {0: 5, 1: 4}
    assert next_offsets(writer, "other") == {0: 9}


def test_dead_letters_are_recorded_once(writer: LedgerWriter, data_dir: Path) -> None:
    poison = [PoisonRecord(TOPIC, 0, 3, "empty value"), PoisonRecord(TOPIC, 1, 3, "empty value")]
    writer.commit_batch([], poison, {(TOPIC, 0): (4, b"k"), (TOPIC, 1): (4, b"k")})
    writer.commit_batch([], poison[:1], {(TOPIC, 0): (4, b"k")})  # redelivered after a crash
    snapshot = LedgerReader(data_dir).snapshot()
    assert snapshot.dead_letters == 2
    assert snapshot.balance == Balance(0, 0)


def test_failed_batch_leaves_nothing_behind(writer: LedgerWriter, data_dir: Path) -> None:
    writer.commit_batch([delivery(1, 2, 3)], [], {(TOPIC, 0): (1, b"k")})
    unbindable = PoisonRecord(TOPIC, 0, 1, cast(Any, object()))  # fails after the entries were inserted
    with pytest.raises(StoreRefused):
        writer.commit_batch([delivery(2, 10, 10)], [unbindable], {(TOPIC, 0): (2, b"k")})
    assert writer.balance() == Balance(total=5, count=1)
    assert next_offsets(writer, TOPIC) == {0: 1}
    assert [e.request_id for e in LedgerReader(data_dir).entries(0, 10)] == [request_id(1)]
    writer.commit_batch([delivery(2, 10, 10)], [], {(TOPIC, 0): (2, b"k")})  # the connection is still usable
    assert writer.balance() == Balance(total=25, count=2)


def test_reopening_verifies_and_keeps_balance_and_offsets(writer: LedgerWriter, data_dir: Path) -> None:
    writer.commit_batch([delivery(1, 2, 3), delivery(2, 4, 5)], [], {(TOPIC, 0): (2, b"k")})
    reopened = reopen(writer, data_dir)
    try:
        assert reopened.balance() == Balance(total=14, count=2)
        assert next_offsets(reopened, TOPIC) == {0: 2}
        assert reopened.commit_batch([delivery(1, 2, 3)], [], {}).duplicates
    finally:
        reopened.close()


def test_totals_beyond_int64_are_exact(writer: LedgerWriter, data_dir: Path) -> None:
    writer.commit_batch([delivery(n, INT64_MAX, 0) for n in range(5)], [], {})
    writer.commit_batch([delivery(n, INT64_MAX - 1, 1) for n in range(5, 8)], [], {})
    expected = 8 * INT64_MAX
    reopened = reopen(writer, data_dir)
    try:
        assert reopened.balance() == Balance(total=expected, count=8)
    finally:
        reopened.close()
    assert LedgerReader(data_dir).snapshot().balance.total == expected
    connection = sqlite3.connect(data_dir / STORE_FILE)
    try:
        assert connection.execute("SELECT typeof(total), total FROM balance").fetchone() == (
            "text",
            str(expected),
        )
    finally:
        connection.close()


def test_negative_totals_beyond_int64_are_exact(writer: LedgerWriter) -> None:
    writer.commit_batch([delivery(n, INT64_MIN, 0) for n in range(3)], [], {})
    assert writer.balance().total == 3 * INT64_MIN


def test_garbage_store_file_is_refused(writer: LedgerWriter, data_dir: Path) -> None:
    writer.close()
    path = data_dir / STORE_FILE
    path.write_bytes(b"\x5a" * path.stat().st_size)
    with pytest.raises(StoreRefused, match="restore it from a backup") as refused:
        LedgerWriter.open_or_create(data_dir)
    assert str(path) in str(refused.value)


def test_damaged_page_is_refused(writer: LedgerWriter, data_dir: Path) -> None:
    writer.commit_batch([delivery(n, n, n) for n in range(50)], [], {})
    writer.close()
    path = data_dir / STORE_FILE
    content = bytearray(path.read_bytes())
    assert len(content) > 3 * 4096
    content[4096 : 3 * 4096] = b"\xff" * (2 * 4096)
    path.write_bytes(bytes(content))
    with pytest.raises(StoreRefused, match="restore it from a backup"):
        LedgerWriter.open_or_create(data_dir)


def test_tampered_balance_is_refused_as_inconsistent(writer: LedgerWriter, data_dir: Path) -> None:
    writer.commit_batch([delivery(1, 2, 3)], [], {})
    writer.close()
    sql(data_dir, "UPDATE balance SET total = '5000'")
    with pytest.raises(StoreRefused, match=r"inconsistent.*total=5000 count=1.*total=5 count=1"):
        LedgerWriter.open_or_create(data_dir)


def test_deleted_entry_is_refused_as_inconsistent(writer: LedgerWriter, data_dir: Path) -> None:
    writer.commit_batch([delivery(1, 2, 3), delivery(2, 0, 0)], [], {})
    writer.close()
    sql(data_dir, "DELETE FROM entries WHERE sum = 0")
    with pytest.raises(StoreRefused, match="inconsistent"):
        LedgerWriter.open_or_create(data_dir)


def test_other_schema_version_is_refused(writer: LedgerWriter, data_dir: Path) -> None:
    writer.close()
    sql(data_dir, "UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StoreRefused, match="schema version"):
        LedgerWriter.open_or_create(data_dir)


@pytest.mark.parametrize("tampering", ["DELETE FROM balance", "UPDATE balance SET total = 'abc'"])
def test_unparseable_balance_is_refused(writer: LedgerWriter, data_dir: Path, tampering: str) -> None:
    writer.close()
    sql(data_dir, tampering)
    with pytest.raises(StoreRefused):
        LedgerWriter.open_or_create(data_dir)


@pytest.mark.parametrize("leftover", ["total", "ledger.db-wal", "old-ledger.db"])
def test_missing_store_on_a_used_volume_is_refused(data_dir: Path, leftover: str) -> None:
    (data_dir / leftover).write_text("42\n")
    with pytest.raises(StoreRefused, match=f"missing but the volume is not empty \\({leftover}\\)"):
        LedgerWriter.open_or_create(data_dir)
    assert not (data_dir / STORE_FILE).exists()


def test_missing_store_with_a_leftover_directory_is_refused(data_dir: Path) -> None:
    (data_dir / "backup").mkdir()
    with pytest.raises(StoreRefused, match="not empty"):
        LedgerWriter.open_or_create(data_dir)


@pytest.mark.parametrize("entry", ["lost+found", STORE_FILE + ".creating", ".hidden"])
def test_volume_with_only_ignorable_entries_gets_a_new_store(data_dir: Path, entry: str) -> None:
    if entry == "lost+found":
        (data_dir / entry).mkdir()
    else:
        (data_dir / entry).write_bytes(b"half-built store")
    writer = LedgerWriter.open_or_create(data_dir)
    try:
        assert writer.balance() == Balance(0, 0)
    finally:
        writer.close()
    assert not (data_dir / (STORE_FILE + ".creating")).exists()


def test_journal_of_a_crashed_creation_does_not_block_creation(data_dir: Path) -> None:
    (data_dir / (STORE_FILE + ".creating")).write_bytes(b"")
    (data_dir / (STORE_FILE + ".creating-journal")).write_bytes(b"")
    LedgerWriter.open_or_create(data_dir).close()


def test_reader_pages_entries_in_application_order(writer: LedgerWriter, data_dir: Path) -> None:
    writer.commit_batch([delivery(n, n, 1) for n in range(3)], [], {})
    writer.commit_batch([delivery(n, n, 1) for n in range(3, 5)], [], {})
    reader = LedgerReader(data_dir)

    first = reader.entries(after=0, limit=2)
    assert [(e.seq, e.request_id) for e in first] == [(1, request_id(0)), (2, request_id(1))]
    second = reader.entries(after=first[-1].seq, limit=2)
    assert [e.seq for e in second] == [3, 4]
    assert [e.seq for e in reader.entries(after=4, limit=2)] == [5]
    assert reader.entries(after=5, limit=2) == []
    assert [e.seq for e in reader.entries(after=0, limit=100)] == [1, 2, 3, 4, 5]

    entry = first[1]
    assert (entry.a, entry.b, entry.sum) == (1, 1, 2)
    assert entry.produced_at == "2025-01-02T03:04:05.678+00:00"
    assert datetime.fromisoformat(entry.applied_at).tzinfo is not None


def test_reader_snapshot_reports_balance_update_time_and_dead_letters(
    writer: LedgerWriter, data_dir: Path
) -> None:
    before = LedgerReader(data_dir).snapshot()
    writer.commit_batch([delivery(1, 2, 3)], [PoisonRecord(TOPIC, 0, 9, "bad")], {})
    after = LedgerReader(data_dir).snapshot()
    assert before.balance == Balance(0, 0)
    assert before.dead_letters == 0
    assert after.balance == Balance(5, 1)
    assert after.dead_letters == 1
    assert datetime.fromisoformat(after.updated_at) >= datetime.fromisoformat(before.updated_at)


def test_reader_of_a_missing_store_raises_sqlite_error(data_dir: Path) -> None:
    with pytest.raises(sqlite3.Error):
        LedgerReader(data_dir).snapshot()
    assert not (data_dir / STORE_FILE).exists()


@st.composite
def batch_lists(draw: st.DrawFn) -> list[list[Delivery]]:
    ids = st.integers(0, 5)
    small = st.integers(-(2**62), 2**62 - 1)  # any two of them add up within int64
    offset = 0
    result = []
    for _ in range(draw(st.integers(1, 4))):
        batch = []
        for n, a, b in draw(st.lists(st.tuples(ids, small, small), max_size=8)):
            batch.append(delivery(n, a, b, offset=offset))
            offset += 1
        result.append(batch)
    return result


@settings(max_examples=25)
@given(batch_lists())
def test_any_sequence_of_batches_applies_each_id_once_and_verifies(batches: list[list[Delivery]]) -> None:
    first_sums: dict[str, int] = {}
    for batch in batches:
        for d in batch:
            first_sums.setdefault(d.event.request_id, d.event.sum)
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        writer = LedgerWriter.open_or_create(data_dir)
        try:
            for batch in batches:
                writer.commit_batch(batch, [], {(TOPIC, 0): (batch[-1].offset + 1, b"k")} if batch else {})
        finally:
            writer.close()
        reopened = LedgerWriter.open_or_create(data_dir)  # verify() recomputes from the entries
        reopened.close()
        assert LedgerReader(data_dir).snapshot().balance == Balance(sum(first_sums.values()), len(first_sums))
        assert [e.request_id for e in LedgerReader(data_dir).entries(0, 100)] == list(first_sums)
