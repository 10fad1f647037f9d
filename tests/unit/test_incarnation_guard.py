"""The log guard against a real store, with Kafka's answers given: a partition whose offsets Kafka did not
list (its leader moving) waits, paused, and is neither read again nor reported as deleted records."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

import pytest
from confluent_kafka import Consumer, TopicPartition

from ledger_svc.config import LedgerSettings
from ledger_svc.consume import metrics
from ledger_svc.consume.incarnation_guard import IncarnationGuard
from ledger_svc.domain.incarnation import Checkpoint, Incarnation, IncarnationState
from ledger_svc.store.writer import LedgerWriter

TOPIC = "sums"
LOG = Incarnation("cluster-a", "topic-1")
INVALID = -1001  # what librdkafka lists for a partition while its leader moves


class ListedOffsets:
    """Kafka's answers, one (start, end) per partition, as the inspector would list them."""

    def __init__(self, offsets: dict[int, tuple[int, int]]):
        self.offsets = offsets

    def inspect(self, partitions: Iterable[int], keys_at: Mapping[int, int]) -> IncarnationState:
        return IncarnationState.listed(LOG, {p: self.offsets[p] for p in partitions})


class RecordingConsumer:
    """What the guard asks of the consumer: which partitions are paused, and where they were sought."""

    def __init__(self) -> None:
        self.paused: set[int] = set()
        self.sought: dict[int, int] = {}

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in partitions}

    def seek(self, partition: TopicPartition) -> None:
        self.sought[partition.partition] = partition.offset


def restarts() -> float:
    return sum(
        sample.value
        for family in metrics.LOG_RESTARTS.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


@pytest.fixture
def guard_parts(writer: LedgerWriter, tmp_path: Path) -> tuple[IncarnationGuard, ListedOffsets, Any]:
    config = LedgerSettings(data_dir=tmp_path / "data", run_dir=tmp_path / "run")
    writer.save_checkpoints(TOPIC, {p: Checkpoint(100 + p, LOG, b"k") for p in range(3)})
    kafka = ListedOffsets({p: (0, 200) for p in range(3)})
    return IncarnationGuard(config, TOPIC, writer, kafka), kafka, RecordingConsumer()


def guard_until_checked(guard: IncarnationGuard, consumer: Any) -> set[int]:
    guard._next_check = 0.0  # due now, as after its interval
    return guard.guard(cast(Consumer, consumer), [0, 1, 2])


def test_a_partition_kafka_lists_no_offsets_for_waits_and_then_goes_on_from_its_checkpoint(
    guard_parts: tuple[IncarnationGuard, ListedOffsets, Any],
    writer: LedgerWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard, kafka, consumer = guard_parts
    assert guard_until_checked(guard, consumer) == set()  # all verified, read on from where they are
    before, checkpoints = restarts(), writer.checkpoints(TOPIC)

    kafka.offsets[1] = (INVALID, INVALID)
    kafka.offsets[2] = (0, INVALID)
    with caplog.at_level(logging.INFO, logger="ledger_svc.consume.incarnation_guard"):
        assert guard_until_checked(guard, consumer) == set(), "no log started again"
    assert consumer.paused == {1, 2} and guard.unverified == {1, 2}
    assert "listed no offsets" in guard.problem
    assert restarts() == before
    assert writer.checkpoints(TOPIC) == checkpoints, "the checkpoints are kept"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no deleted records reported"

    kafka.offsets[1] = kafka.offsets[2] = (0, 200)
    consumer.sought.clear()
    assert guard_until_checked(guard, consumer) == set()
    assert consumer.paused == set() and guard.unverified == set() and guard.problem == ""
    assert consumer.sought == {1: 101, 2: 102}, "they go on from their checkpoints"
    assert restarts() == before


def test_an_invalid_offset_stored_by_an_earlier_version_becomes_the_log_start(
    guard_parts: tuple[IncarnationGuard, ListedOffsets, Any],
    writer: LedgerWriter,
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard, kafka, consumer = guard_parts
    writer.save_checkpoints(TOPIC, {1: Checkpoint(INVALID, LOG)})
    kafka.offsets[1] = (30, 200)
    guard.hold({0, 1, 2})  # as on assignment
    with caplog.at_level(logging.INFO, logger="ledger_svc.consume.incarnation_guard"):
        assert guard_until_checked(guard, consumer) == set()
    assert writer.checkpoints(TOPIC)[1] == Checkpoint(30, LOG)
    assert consumer.sought[1] == 30
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], "no deleted records reported"
