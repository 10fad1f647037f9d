"""The consumer loop against a real store, with Kafka faked: a consumer that serves an in-memory log
and honours assign, seek, pause and resume, an inspector that describes that log, and a dead-letter
sink that records what it is sent."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, Message, TopicPartition
from prometheus_client import Counter

from distsum import event_codec
from distsum.domain import SumComputed
from ledger_svc import consumer_status
from ledger_svc.config import LedgerSettings
from ledger_svc.consume import metrics
from ledger_svc.consume.fences import FenceJudge
from ledger_svc.consume.loop import LedgerConsumer
from ledger_svc.consume.ports import (
    DeadLetterFailed,
    InstanceHolder,
    KafkaConsumerFatal,
    RebalanceCallback,
)
from ledger_svc.domain.incarnation import Checkpoint, Incarnation, IncarnationState
from ledger_svc.store.reader import LedgerReader
from ledger_svc.store.writer import LedgerWriter
from tests.unit.conftest import FakeClock

TOPIC = "sums"
LOG = Incarnation("cluster-a", "topic-1")
PRODUCED_AT = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)


def event(n: int) -> Message:
    request_id = f"00000000-0000-4000-8000-{n:012d}"
    value = event_codec.encode(SumComputed(request_id, n, 1, n + 1, PRODUCED_AT))
    return Message(topic=TOPIC, key=request_id.encode(), value=value)


class FakeKafka:
    """One topic's partitions as lists of records; every consumer made from it serves them."""

    def __init__(self, partitions: int) -> None:
        self.records: dict[int, list[Message]] = {p: [] for p in range(partitions)}
        self.delivered: list[tuple[int, int]] = []  # (partition, offset), in delivery order
        self.committed: dict[int, int] = {}  # the offsets mirrored to Kafka

    def append(self, partition: int, message: Message) -> None:
        offset = len(self.records[partition])
        self.records[partition].append(
            Message(topic=TOPIC, partition=partition, offset=offset, key=message.key(), value=message.value())
        )


class FakeConsumer:
    """Assigns every partition at the first consume, and sets stop once nothing is left to read."""

    def __init__(self, kafka: FakeKafka, stop: threading.Event) -> None:
        self._kafka = kafka
        self._stop = stop
        self._on_assign: RebalanceCallback | None = None
        self._on_revoke: RebalanceCallback | None = None
        self.position: dict[int, int] = {}
        self.paused: set[int] = set()

    def subscribe(
        self,
        topics: list[str],
        on_assign: RebalanceCallback,
        on_revoke: RebalanceCallback,
        on_lost: RebalanceCallback,
    ) -> None:
        self._on_assign, self._on_revoke = on_assign, on_revoke

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        if self._on_assign is not None:
            assign, self._on_assign = self._on_assign, None
            assign(self, [TopicPartition(TOPIC, p) for p in self._kafka.records])
            return []
        batch: list[Message] = []
        for partition, offset in sorted(self.position.items()):
            if partition in self.paused:
                continue
            records = self._kafka.records[partition][offset : offset + num_messages - len(batch)]
            batch.extend(records)
            self.position[partition] = offset + len(records)
        self._kafka.delivered.extend((m.partition() or 0, m.offset() or 0) for m in batch)
        if not batch and not self.paused:
            self._stop.set()
        return batch

    def poll(self, timeout: float) -> Message | None:
        return None

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.position = {tp.partition: max(tp.offset, 0) for tp in partitions}  # negative: the start

    def unassign(self) -> None:
        self.position = {}

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in partitions}

    def seek(self, partition: TopicPartition) -> None:
        self.position[partition.partition] = max(partition.offset, 0)

    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> None:
        self._kafka.committed.update({tp.partition: tp.offset for tp in offsets})

    def close(self) -> None:
        pass


class ClosesLate(FakeConsumer):
    """A consumer whose close() waits for `release`, then serves the revoke librdkafka runs as it closes."""

    def __init__(self, kafka: FakeKafka, stop: threading.Event) -> None:
        super().__init__(kafka, stop)
        self.release = threading.Event()
        self.closed = threading.Event()

    def close(self) -> None:
        self.release.wait(30)
        assert self._on_revoke is not None
        self._on_revoke(self, [TopicPartition(TOPIC, p) for p in self._kafka.records])
        self.closed.set()


class FencedOnce(FakeConsumer):
    """A consumer whose first read after its assignment reports the fatal fence, as librdkafka does."""

    def __init__(self, kafka: FakeKafka, stop: threading.Event) -> None:
        super().__init__(kafka, stop)
        self.fenced = False

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        if self.position and not self.fenced:
            self.fenced = True
            fence = (
                "Fatal error: Broker: Static consumer fenced by other consumer with same group.instance.id"
            )
            return [Message(error=KafkaError(KafkaError._FATAL, fence, fatal=True))]
        return super().consume(num_messages, timeout)


class FakeMembers:
    """What the group coordinator lists as the holder of the ledger's group.instance.id: nobody, or a
    member that lives on."""

    def __init__(self, holder: InstanceHolder | None = None) -> None:
        self.holder = holder

    def holder_of_instance(self) -> InstanceHolder | None:
        return self.holder


def fence_judge(holder: InstanceHolder | None = None) -> FenceJudge:
    clock = FakeClock()
    return FenceJudge(FakeMembers(holder), "ledger-0", 15, clock=clock, sleep=clock.advance)


class FakeInspector:
    """Describes the fake log as Kafka would: its ids, offsets and the keys asked for."""

    def __init__(self, kafka: FakeKafka) -> None:
        self._kafka = kafka

    def inspect(self, partitions: Iterable[int], keys_at: Mapping[int, int]) -> IncarnationState:
        records = self._kafka.records
        keys = {p: records[p][o].key() or b"" for p, o in keys_at.items() if o < len(records[p])}
        return IncarnationState.listed(LOG, {p: (0, len(records[p])) for p in partitions}, keys)


class FakeDeadLetters:
    """Records what it is sent; fails the first `failures` sends."""

    def __init__(self, failures: int = 0) -> None:
        self.sent: list[tuple[Message, str]] = []
        self.failures = failures

    def send(self, poison: list[tuple[Message, str]], timeout: float) -> None:
        if self.failures:
            self.failures -= 1
            raise DeadLetterFailed("the dead-letter topic did not acknowledge")
        self.sent.extend(poison)

    def reconnect(self) -> None:
        pass

    def close(self, timeout: float) -> None:
        pass


@pytest.fixture
def config(tmp_path: Path, data_dir: Path) -> LedgerSettings:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    return LedgerSettings(data_dir=data_dir, run_dir=run_dir, retry_interval_seconds=0.01)


def run_ledger(
    config: LedgerSettings,
    writer: LedgerWriter,
    kafka: FakeKafka,
    dead_letters: FakeDeadLetters | None = None,
    *,
    first: type[FakeConsumer] = FakeConsumer,
    holder: InstanceHolder | None = None,
) -> list[FakeConsumer]:
    """Run the loop until it has read everything Kafka holds; the consumers it made, in order (the first
    of type `first`, any replacement a FakeConsumer). `holder` is who the coordinator lists after a fence."""
    stop = threading.Event()
    consumers: list[FakeConsumer] = []

    def new_consumer() -> FakeConsumer:
        consumers.append((FakeConsumer if consumers else first)(kafka, stop))
        return consumers[-1]

    LedgerConsumer(
        config,
        TOPIC,
        writer,
        new_consumer=new_consumer,
        inspector=FakeInspector(kafka),
        dead_letters=dead_letters or FakeDeadLetters(),
        fences=fence_judge(holder),
    ).run(stop)
    return consumers


def counted(counter: Counter) -> float:
    return sum(
        sample.value
        for family in counter.collect()
        for sample in family.samples
        if sample.name.endswith("_total")
    )


def test_every_event_is_applied_once_and_the_checkpoints_are_where_the_loop_read_up_to(
    config: LedgerSettings, writer: LedgerWriter
) -> None:
    kafka = FakeKafka(partitions=2)
    for n in range(5):
        kafka.append(n % 2, event(n))

    run_ledger(config, writer, kafka)

    balance = writer.balance()
    assert (balance.total, balance.count) == (sum(n + 1 for n in range(5)), 5)
    assert config.total_file.read_text() == f"{balance.total}\n"
    checkpoints = writer.checkpoints(TOPIC)
    for partition, records in kafka.records.items():
        assert checkpoints[partition].next_offset == len(records)
        assert checkpoints[partition].last_key == records[-1].key()
        assert checkpoints[partition].incarnation == LOG
    assert kafka.committed == {p: len(records) for p, records in kafka.records.items()}


def test_a_restarted_ledger_resumes_at_its_checkpoints_and_reads_nothing_twice(
    config: LedgerSettings, writer: LedgerWriter
) -> None:
    kafka = FakeKafka(partitions=1)
    for n in range(3):
        kafka.append(0, event(n))
    run_ledger(config, writer, kafka)
    for n in range(3, 5):
        kafka.append(0, event(n))
    kafka.delivered.clear()

    run_ledger(config, writer, kafka)

    assert kafka.delivered == [(0, 3), (0, 4)]
    assert writer.balance().count == 5


def test_events_delivered_again_are_not_counted_twice(config: LedgerSettings, writer: LedgerWriter) -> None:
    kafka = FakeKafka(partitions=1)
    for n in (0, 1, 2, 1, 2):  # the producer sent 1 and 2 again
        kafka.append(0, event(n))
    run_ledger(config, writer, kafka)
    kafka.append(0, event(0))

    run_ledger(config, writer, kafka)

    balance = writer.balance()
    assert (balance.total, balance.count) == (1 + 2 + 3, 3)
    assert writer.checkpoints(TOPIC)[0].next_offset == 6


def test_a_poison_record_goes_to_the_dead_letter_sink_and_is_counted_once(
    config: LedgerSettings, writer: LedgerWriter, data_dir: Path
) -> None:
    kafka = FakeKafka(partitions=1)
    kafka.append(0, event(0))
    kafka.append(0, Message(key=b"garbage", value=b"\xff not a protobuf"))
    kafka.append(0, event(2))
    dead_letters = FakeDeadLetters(failures=1)  # the first send fails: the batch is retried
    poisoned_before = counted(metrics.POISON_MESSAGES)

    run_ledger(config, writer, kafka, dead_letters)

    assert [(m.partition(), m.offset()) for m, _ in dead_letters.sent] == [(0, 1)]
    assert "protobuf" in dead_letters.sent[0][1]
    assert counted(metrics.POISON_MESSAGES) - poisoned_before == 1
    snapshot = LedgerReader(data_dir).snapshot()
    assert (snapshot.balance.total, snapshot.balance.count, snapshot.dead_letters) == (1 + 3, 2, 1)
    assert writer.checkpoints(TOPIC)[0].next_offset == 3


def test_a_replaced_consumer_that_does_not_close_holds_nothing_up(
    config: LedgerSettings, writer: LedgerWriter
) -> None:
    """librdkafka's close() can wait minutes for a rejoin a restarted coordinator holds: the loop goes on
    with its new consumer after the close timeout, and the revoke the old one serves when it finally
    closes changes nothing."""
    config = config.model_copy(update={"consumer_close_timeout_seconds": 0.05})
    kafka = FakeKafka(partitions=1)
    for n in range(3):
        kafka.append(0, event(n))
    # Offsets of another log: the loop reads the new one through a new consumer, replacing the first.
    writer.save_checkpoints(TOPIC, {0: Checkpoint(2, Incarnation("cluster-gone", "topic-0"))})
    timeouts_before = counted(metrics.CONSUMER_CLOSE_TIMEOUTS)
    consumers = run_ledger(config, writer, kafka, first=ClosesLate)

    assert writer.balance().count == 3
    assert counted(metrics.CONSUMER_CLOSE_TIMEOUTS) == timeouts_before + 1
    replaced = consumers[0]
    assert isinstance(replaced, ClosesLate) and len(consumers) == 2
    replaced.release.set()
    assert replaced.closed.wait(10), "the replaced consumer's close did not finish"
    status = consumer_status.read(config.status_file)
    assert status is not None and status.state == "stopped"


def test_a_consumer_fenced_by_its_own_late_join_is_replaced_and_nothing_is_lost(
    config: LedgerSettings, writer: LedgerWriter
) -> None:
    """After a coordinator stall, a join the consumer had given up on can fence the one that replaced it;
    nobody heartbeats for the member it made, the coordinator drops it, and the loop rejoins."""
    kafka = FakeKafka(partitions=2)
    for n in range(4):
        kafka.append(n % 2, event(n))
    fences_before = counted(metrics.CONSUMER_OWN_FENCES)

    consumers = run_ledger(config, writer, kafka, first=FencedOnce)

    assert [type(c) for c in consumers] == [FencedOnce, FakeConsumer]
    assert (writer.balance().count, writer.balance().total) == (4, sum(n + 1 for n in range(4)))
    assert counted(metrics.CONSUMER_OWN_FENCES) == fences_before + 1


def test_a_consumer_fenced_by_a_member_that_lives_on_ends_the_loop_naming_it(
    config: LedgerSettings, writer: LedgerWriter
) -> None:
    kafka = FakeKafka(partitions=1)
    kafka.append(0, event(0))

    with pytest.raises(
        KafkaConsumerFatal, match=r"still held by member 'm-99' \(client 'ledger' at /10\.0\.0\.9\)"
    ):
        run_ledger(
            config, writer, kafka, first=FencedOnce, holder=InstanceHolder("m-99", "ledger", "/10.0.0.9")
        )

    assert writer.balance().count == 0
