"""Deciding whether Kafka still serves the log a checkpoint belongs to."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger_svc.domain.incarnation import (
    RESTART_REASONS,
    Checkpoint,
    Incarnation,
    Match,
    PartitionExtent,
    judge,
    offsets_problem,
)

OLD = Incarnation("cluster-a", "topic-1")

log_ids = st.builds(
    Incarnation, st.sampled_from(["cluster-a", "cluster-b"]), st.sampled_from(["topic-1", "topic-2"])
)
keys = st.sampled_from([b"", b"id-1", b"id-2"])


@st.composite
def situations(draw: st.DrawFn) -> tuple[Checkpoint, Incarnation | None, PartitionExtent]:
    start = draw(st.integers(0, 50))
    end = start + draw(st.integers(0, 50))
    # -1001 (librdkafka's "invalid offset"): what earlier versions stored where Kafka listed no offsets.
    next_offset = draw(st.integers(0, 120) | st.just(-1001))
    checkpoint = Checkpoint(next_offset, draw(st.none() | log_ids), draw(st.none() | keys))
    return checkpoint, draw(st.none() | log_ids), PartitionExtent(start, end, draw(st.none() | keys))


def test_a_partition_without_checkpoint_is_unread() -> None:
    assert judge(None, OLD, PartitionExtent(0, 10)).match is Match.UNREAD


def test_same_ids_and_offset_within_the_log_is_the_same_log() -> None:
    verdict = judge(Checkpoint(7, OLD, b"id-1"), OLD, PartitionExtent(0, 10))
    assert verdict.match is Match.SAME
    assert verdict.expired == 0


def test_a_new_cluster_id_is_a_new_log_naming_both() -> None:
    verdict = judge(Checkpoint(7, OLD), Incarnation("cluster-b", "topic-1"), PartitionExtent(0, 900))
    assert (verdict.match, verdict.reason) == (Match.NEW, "cluster_id_changed")
    assert "cluster-a" in verdict.detail
    assert "cluster-b" in verdict.detail


def test_a_new_topic_id_is_a_new_log() -> None:
    verdict = judge(Checkpoint(7, OLD), Incarnation("cluster-a", "topic-2"), PartitionExtent(0, 900))
    assert (verdict.match, verdict.reason) == (Match.NEW, "topic_id_changed")


def test_an_offset_beyond_the_end_is_a_new_log_even_with_the_same_ids() -> None:
    verdict = judge(Checkpoint(55, OLD), OLD, PartitionExtent(0, 20))
    assert (verdict.match, verdict.reason) == (Match.NEW, "offset_beyond_end")


def test_another_record_before_the_checkpoint_is_a_new_log_even_with_the_same_ids() -> None:
    verdict = judge(Checkpoint(55, OLD, b"id-1"), OLD, PartitionExtent(0, 900, b"id-2"))
    assert (verdict.match, verdict.reason) == (Match.NEW, "record_mismatch")


def test_an_old_store_is_shown_to_be_on_the_log_by_its_record() -> None:
    assert judge(Checkpoint(55, None, b"id-1"), OLD, PartitionExtent(0, 900, b"id-1")).match is Match.SAME


def test_an_old_store_without_a_readable_record_is_unproven() -> None:
    assert judge(Checkpoint(55, None, b"id-1"), OLD, PartitionExtent(60, 900)).match is Match.UNPROVEN
    assert judge(Checkpoint(55, None, None), OLD, PartitionExtent(0, 900)).match is Match.UNPROVEN


def test_records_deleted_before_they_were_read_are_counted() -> None:
    verdict = judge(Checkpoint(5, OLD), OLD, PartitionExtent(12, 40))
    assert (verdict.match, verdict.expired) == (Match.SAME, 7)


def test_a_stored_invalid_offset_means_the_start_and_nothing_expired() -> None:
    verdict = judge(Checkpoint(-1001, OLD), OLD, PartitionExtent(12, 40))
    assert (verdict.match, verdict.expired) == (Match.SAME, 0)


@given(st.integers(-1001, 100), st.integers(-1001, 100))
def test_listed_offsets_describe_a_log_only_when_real_and_in_order(start: int, end: int) -> None:
    problem = offsets_problem(start, end)
    assert (problem is None) == (0 <= start <= end)
    assert problem is None or "Kafka listed" in problem


@given(situations())
def test_same_only_where_nothing_points_to_another_log(
    situation: tuple[Checkpoint, Incarnation | None, PartitionExtent],
) -> None:
    checkpoint, current, kafka = situation
    verdict = judge(checkpoint, current, kafka)
    other_ids = (
        checkpoint.incarnation is not None and current is not None and checkpoint.incarnation != current
    )
    other_record = None not in (checkpoint.last_key, kafka.key_before_checkpoint) and (
        checkpoint.last_key != kafka.key_before_checkpoint
    )
    evidence = other_ids or checkpoint.next_offset > kafka.end or other_record
    assert (verdict.match is Match.NEW) == evidence
    if verdict.match is Match.SAME:
        proof = (checkpoint.incarnation is not None and current is not None) or (
            kafka.key_before_checkpoint is not None and checkpoint.last_key is not None
        )
        assert proof or checkpoint.next_offset <= 0
        expired = kafka.start - checkpoint.next_offset if checkpoint.next_offset >= 0 else 0
        assert verdict.expired == max(0, expired)
    if verdict.match is not Match.SAME:
        assert verdict.expired == 0
    if verdict.match in (Match.NEW, Match.UNPROVEN):
        assert verdict.reason in RESTART_REASONS  # the metric's series exist from the start
