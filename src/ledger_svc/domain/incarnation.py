"""Which incarnation of the topic the store's offsets belong to, and whether Kafka still serves it. No I/O.

An incarnation is one life of the topic's log in Kafka, named by the cluster id and the topic id: it ends
when the brokers lose their data or the topic is deleted (the log messages, metrics and alerts call that
"the Kafka log started again").

An offset only means something within one log. When a broker loses its data or the topic is deleted and
created again, the partitions start again at offset 0 while the store still holds the old log's next
offsets; seeking there would skip every record below them. So each partition's checkpoint records the
log it belongs to (the cluster id and the topic id) and the key of the record just before the next
offset, and the consumer resumes at a checkpoint only where the log Kafka serves now is shown to be
that log. Anywhere else it reads the partition again from the start: request ids make that safe, since
whatever was applied already is skipped, so doing it needlessly costs time but never a wrong total.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Incarnation:
    """One life of a topic: Kafka's cluster id and topic id (one changes when the log starts again)."""

    cluster_id: str
    topic_id: str

    def __str__(self) -> str:
        return f"cluster {self.cluster_id} topic {self.topic_id}"


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """Where a partition resumes, as the store keeps it.

    incarnation is None in stores written before it was recorded; last_key is the key of the record at
    next_offset - 1 (b"" for a record without one), None where unknown."""

    next_offset: int
    incarnation: Incarnation | None = None
    last_key: bytes | None = None


@dataclass(frozen=True, slots=True)
class PartitionExtent:
    """What Kafka serves for one partition now: its first and end offsets, and the key of the record
    at the checkpoint's next_offset - 1 where it was read (None where it was not)."""

    start: int
    end: int
    key_before_checkpoint: bytes | None = None


def offsets_problem(start: int, end: int) -> str | None:
    """Why a partition's listed offsets describe no log, or None where they do.

    While a partition's leader moves, Kafka can answer a list-offsets request with no error and a
    logical offset (librdkafka's -1001, "invalid") in place of a real one. Judged as offsets, that reads
    as a log that started again, with records deleted before they were read (a false alarm, and a
    needless reading again from the start)."""
    if start < 0 or end < 0:
        return "Kafka listed no offsets (the partition's leader may be moving)"
    if start > end:
        return "Kafka listed a start offset beyond the end offset"
    return None


@dataclass(frozen=True, slots=True)
class IncarnationState:
    """The topic's ids (None where the broker reports no topic id), the log of each asked partition
    whose offsets Kafka listed, and why the others have none."""

    incarnation: Incarnation | None
    partitions: dict[int, PartitionExtent]
    unknown: dict[int, str] = field(default_factory=dict)

    @classmethod
    def listed(
        cls,
        incarnation: Incarnation | None,
        offsets: Mapping[int, tuple[int, int]],
        keys: Mapping[int, bytes] | None = None,
    ) -> IncarnationState:
        """From the (start, end) offsets Kafka listed per partition, and the keys read before checkpoints."""
        unknown = {p: why for p, (start, end) in offsets.items() if (why := offsets_problem(start, end))}
        logs = {
            p: PartitionExtent(start, end, (keys or {}).get(p))
            for p, (start, end) in offsets.items()
            if p not in unknown
        }
        return cls(incarnation, logs, unknown)


# Why a partition's log is read again from its start: the reasons judge gives for Match.NEW, and
# "unproven" for a newly assigned partition that nothing shows to be on its checkpoint's log.
RESTART_REASONS = (
    "cluster_id_changed",
    "topic_id_changed",
    "offset_beyond_end",
    "record_mismatch",
    "unproven",
)


class Match(enum.Enum):
    UNREAD = "unread"  # no checkpoint: nothing of the partition has been read yet
    SAME = "same"  # shown to be the checkpoint's log
    NEW = "new"  # shown to be another log
    UNPROVEN = "unproven"  # nothing shows either


@dataclass(frozen=True, slots=True)
class Verdict:
    match: Match
    reason: str  # a metric label: short, from a fixed set
    detail: str = ""
    # Same log, but Kafka deleted records (retention) the ledger never read: they are gone for good.
    expired: int = 0


def judge(checkpoint: Checkpoint | None, current: Incarnation | None, log: PartitionExtent) -> Verdict:
    """Compare a partition's checkpoint with the log Kafka serves (current is None where the broker
    reports no topic id)."""
    if checkpoint is None:
        return Verdict(Match.UNREAD, "no_checkpoint")
    stored = checkpoint.incarnation
    ids_known = stored is not None and current is not None
    if stored is not None and current is not None and stored != current:
        changed = "cluster_id" if stored.cluster_id != current.cluster_id else "topic_id"
        return Verdict(Match.NEW, f"{changed}_changed", f"{stored} -> {current}")
    if checkpoint.next_offset > log.end:
        return Verdict(
            Match.NEW,
            "offset_beyond_end",
            f"stored next offset {checkpoint.next_offset} is beyond the log's end {log.end}",
        )
    record_read = checkpoint.last_key is not None and log.key_before_checkpoint is not None
    if record_read and checkpoint.last_key != log.key_before_checkpoint:
        return Verdict(
            Match.NEW,
            "record_mismatch",
            f"the record at offset {checkpoint.next_offset - 1} has key {log.key_before_checkpoint!r},"
            f" the store read {checkpoint.last_key!r} there",
        )
    if record_read or ids_known or checkpoint.next_offset <= 0:
        # A negative next offset is "the log's start, whatever it is": earlier versions stored one where
        # Kafka listed no offsets (see offsets_problem); nothing was skipped.
        expired = log.start - checkpoint.next_offset if checkpoint.next_offset >= 0 else 0
        return Verdict(Match.SAME, "same_log", expired=max(0, expired))
    return Verdict(Match.UNPROVEN, "unproven", "neither the log's ids nor a record show it is the same log")
