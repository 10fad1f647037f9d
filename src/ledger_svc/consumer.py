"""The consumer loop: the ledger's only writer.

Kafka is read with auto-commit off; the store holds the next offset of every
partition, committed in the same transaction as the batch's entries and balance.
On every assignment the consumer seeks to those offsets, so whatever Kafka
redelivers after a crash or rebalance is either past the store (new) or already
in it (skipped by request_id).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, KafkaException, Message, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind

from distsum import event_codec, telemetry
from distsum.settings import KafkaSettings
from ledger_svc import consumer_status, metrics
from ledger_svc.config import LedgerSettings
from ledger_svc.consumer_status import CONSUMING, ConsumerStatus
from ledger_svc.dead_letters import DeadLetterFailed, DeadLetterPublisher
from ledger_svc.durable_files import replace_atomically
from ledger_svc.kafka_consumer import LagReporter, new_consumer
from ledger_svc.ledger import Balance, Delivery, PoisonRecord
from ledger_svc.store import LedgerWriter, StoreUnwritable

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

HEARTBEAT_SECONDS = 1.0


@dataclass(slots=True)
class Batch:
    deliveries: list[Delivery] = field(default_factory=list)
    poison: list[tuple[Message, PoisonRecord]] = field(default_factory=list)
    next_offsets: dict[tuple[str, int], int] = field(default_factory=dict)
    spans: dict[tuple[int, int], Span] = field(default_factory=dict)
    dead_lettered: bool = False
    committed: bool = False


class LedgerConsumer:
    def __init__(
        self,
        config: LedgerSettings,
        kafka: KafkaSettings,
        writer: LedgerWriter,
        dead_letters: DeadLetterPublisher,
    ):
        self._config = config
        self._topic = kafka.topic
        self._writer = writer
        self._dead_letters = dead_letters
        self._consumer = new_consumer(config, kafka)
        self._lag = LagReporter(self._consumer, self._topic)
        self._pending: Batch | None = None
        self._balance = writer.balance()
        self._committed_offsets: dict[int, int] = {}
        self._total_file_current = False
        self._paused = False
        self._status = ConsumerStatus(state="starting")
        self._last_heartbeat = 0.0

    def run(self, stop: threading.Event) -> None:
        metrics.TOTAL.set(self._balance.total)
        metrics.COUNT.set(self._balance.count)
        self._write_total_file(self._balance)
        self._consumer.subscribe(
            [self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )
        log.info("consuming", extra={"topic": self._topic, "group_id": self._config.group_id})
        try:
            while not stop.is_set():
                if self._pending is None:
                    self._pending = self._receive()
                if self._pending is not None and not self._finish(self._pending):
                    self._wait_while_degraded(stop)
                self._lag.refresh_if_due(self._committed_offsets)
                self._heartbeat()
        finally:
            self._set_status("stopped", reason="shutting down")
            self._consumer.close()
            self._dead_letters.close(5)

    def _receive(self) -> Batch | None:
        messages = self._consumer.consume(self._config.batch_max_messages, self._config.batch_wait_seconds)
        batch = Batch()
        for message in messages:
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning(
                        "kafka consumer error", extra={"kafka_error": error.name(), "detail": error.str()}
                    )
                continue
            topic, partition, offset = _position(message, self._topic)
            batch.next_offsets[(topic, partition)] = offset + 1
            span = tracer.start_span(
                f"{topic} process",
                context=telemetry.context_from_headers(message.headers()),
                kind=SpanKind.CONSUMER,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.operation.type": "process",
                    "messaging.destination.name": topic,
                    "messaging.destination.partition.id": str(partition),
                    "messaging.kafka.offset": offset,
                    "messaging.consumer.group.name": self._config.group_id,
                },
            )
            batch.spans[(partition, offset)] = span
            try:
                event = event_codec.decode(message.value())
            except event_codec.PoisonMessage as exc:
                span.set_attribute("ledger.outcome", "dead_letter")
                batch.poison.append((message, PoisonRecord(topic, partition, offset, str(exc))))
                continue
            span.set_attribute("messaging.kafka.message.key", event.request_id)
            batch.deliveries.append(Delivery(event, topic, partition, offset))
        return batch if batch.next_offsets else None

    def _finish(self, batch: Batch) -> bool:
        """Dead-letter, commit and publish the total; each step is retried alone after a failure."""
        try:
            if batch.poison and not batch.dead_lettered:
                self._dead_letters.send([(m, p.reason) for m, p in batch.poison], timeout=10)
                batch.dead_lettered = True
                metrics.POISON_MESSAGES.inc(len(batch.poison))
                for _, record in batch.poison:
                    log.error(
                        "poison message sent to dead-letter topic",
                        extra={
                            "partition": record.partition,
                            "offset": record.offset,
                            "reason": record.reason,
                        },
                    )
            if not batch.committed:
                self._commit(batch)
            if not self._total_file_current:
                self._write_total_file(self._balance)
        except (StoreUnwritable, DeadLetterFailed, OSError) as exc:
            metrics.WRITE_FAILURES.inc()
            metrics.STORE_WRITABLE.set(0)
            self._set_status("degraded", reason=str(exc))
            log.error("batch not finished; pausing consumption until it can be", extra={"reason": str(exc)})
            return False
        self._pending = None
        if self._paused:
            self._resume_from_store()
        if self._status.state != CONSUMING:
            log.info("batch finished; consuming again")
            self._set_status(CONSUMING)
        metrics.STORE_WRITABLE.set(1)
        return True

    def _commit(self, batch: Batch) -> None:
        with tracer.start_as_current_span(
            "ledger commit batch",
            links=[Link(span.get_span_context()) for span in list(batch.spans.values())[:128]],
        ):
            started = time.perf_counter()
            plan = self._writer.commit_batch(
                batch.deliveries, [p for _, p in batch.poison], batch.next_offsets
            )
        metrics.BATCH_COMMIT_DURATION.observe(time.perf_counter() - started)
        batch.committed = True
        self._balance = plan.balance
        self._total_file_current = False
        for (_, partition), offset in batch.next_offsets.items():
            self._committed_offsets[partition] = offset
        try:
            # Informational only (lag tooling reads it); the store already holds the offsets.
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), o in batch.next_offsets.items()],
                asynchronous=True,
            )
        except KafkaException as exc:
            log.warning("could not mirror offsets to Kafka", extra={"reason": str(exc)})
        now = time.time()
        for delivery in plan.to_apply:
            metrics.QUEUE_LATENCY.observe(max(0.0, now - delivery.event.produced_at.timestamp()))
        for outcome, deliveries in (
            ("applied", plan.to_apply),
            ("duplicate", plan.duplicates),
            ("conflict", plan.conflicts),
        ):
            for delivery in deliveries:
                batch.spans[(delivery.partition, delivery.offset)].set_attribute("ledger.outcome", outcome)
        for span in batch.spans.values():
            span.end()
        metrics.EVENTS_APPLIED.inc(len(plan.to_apply))
        metrics.DUPLICATES_SKIPPED.inc(len(plan.duplicates))
        metrics.CONFLICTS.inc(len(plan.conflicts))
        metrics.TOTAL.set(plan.balance.total)
        metrics.COUNT.set(plan.balance.count)
        for conflict in plan.conflicts:
            log.warning(
                "request_id reused with other operands; not counted",
                extra={"request_id": conflict.event.request_id, "a": conflict.event.a, "b": conflict.event.b},
            )
        log.info(
            "batch committed",
            extra={
                "applied": len(plan.to_apply),
                "duplicates": len(plan.duplicates),
                "conflicts": len(plan.conflicts),
                "dead_letters": len(batch.poison),
                "total": str(plan.balance.total),
                "count": plan.balance.count,
            },
        )

    def _write_total_file(self, balance: Balance) -> None:
        replace_atomically(self._config.total_file, f"{balance.total}\n")
        self._total_file_current = True

    def _wait_while_degraded(self, stop: threading.Event) -> None:
        assignment = self._consumer.assignment()
        if assignment:
            self._consumer.pause(assignment)
            self._paused = True
        deadline = time.monotonic() + self._config.retry_interval_seconds
        while not stop.is_set() and time.monotonic() < deadline:
            # Polling keeps group membership; what it might still return is re-read after the seek.
            self._consumer.poll(0.2)
            self._heartbeat()
        try:
            self._writer.reopen()
        except StoreUnwritable as exc:
            log.warning("store still unwritable", extra={"reason": str(exc)})

    def _resume_from_store(self) -> None:
        assignment = self._consumer.assignment()
        stored = self._writer.next_offsets(self._topic)
        for tp in assignment:
            self._consumer.seek(
                TopicPartition(tp.topic, tp.partition, stored.get(tp.partition, OFFSET_BEGINNING))
            )
        self._consumer.resume(assignment)
        self._paused = False

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = self._writer.next_offsets(self._topic)
        for tp in partitions:
            tp.offset = stored.get(tp.partition, OFFSET_BEGINNING)
        consumer.assign(partitions)
        self._paused = False
        self._committed_offsets = {tp.partition: stored.get(tp.partition, 0) for tp in partitions}
        log.info("partitions assigned", extra={"resume_at": {tp.partition: tp.offset for tp in partitions}})
        self._set_status(CONSUMING if self._pending is None else self._status.state)

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # An unfinished batch is dropped: the next assignment seeks back to the store's offsets.
        if self._pending is not None and not self._pending.committed:
            for span in self._pending.spans.values():
                span.end()
            self._pending = None
        consumer.unassign()
        self._committed_offsets = {}
        log.info("partitions revoked", extra={"partitions": [tp.partition for tp in partitions]})
        self._set_status("rebalancing")

    def _set_status(self, state: str, reason: str = "") -> None:
        assigned = sorted(tp.partition for tp in self._consumer.assignment())
        self._status = ConsumerStatus(state=state, assigned=assigned, reason=reason)
        consumer_status.write(self._config.status_file, self._status)
        self._last_heartbeat = time.monotonic()

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self._set_status(self._status.state, self._status.reason)


def _position(message: Message, default_topic: str) -> tuple[str, int, int]:
    partition, offset = message.partition(), message.offset()
    if partition is None or offset is None:
        raise ValueError("a consumed record without partition or offset")
    return message.topic() or default_topic, partition, offset
