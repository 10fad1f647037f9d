"""The consumer loop: the ledger's only writer.

Kafka is read with auto-commit off; the store holds the next offset of every
partition, committed in the same transaction as the batch's entries and balance.
On every assignment the consumer seeks to those offsets, so whatever Kafka
redelivers after a crash or rebalance is either past the store (new) or already
in it (skipped by request_id). An offset belongs to one Kafka log: newly assigned
partitions stay paused until the log guard has shown that Kafka still serves the
log their offsets belong to, and a log found to have started again is read from
its start.

The consumer tracks its assigned partitions itself, from the rebalance callbacks: asking librdkafka for
the assignment inside a callback that close() runs can block forever. A consumer left subscribed without
partitions for LEDGER_REJOIN_AFTER_SECONDS is replaced: a static member may never rejoin after the group
coordinator restarted (librdkafka #3437). A replaced consumer is closed within
LEDGER_CONSUMER_CLOSE_TIMEOUT_SECONDS or left to close on its own thread (kafka_clients.close_within), and
the callbacks it still runs there change nothing.

A fatal consumer error ends the loop with KafkaConsumerFatal instead, and the process exits (see
ports): the case librdkafka documents is another member with the same group.instance.id
fencing this one. Only a fence by one of this process's own joins, processed late after a coordinator
stall, is answered with a new consumer instead (fences.FenceJudge).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, TopicPartition
from opentelemetry import trace
from opentelemetry.trace import Link

from ledger_svc import consumer_status
from ledger_svc.config import LedgerSettings
from ledger_svc.consume import metrics
from ledger_svc.consume.batch import Batch
from ledger_svc.consume.fences import FenceJudge
from ledger_svc.consume.incarnation_guard import IncarnationGuard
from ledger_svc.consume.kafka_clients import close_within
from ledger_svc.consume.ports import (
    DeadLetterFailed,
    DeadLetterSink,
    IncarnationInspector,
    KafkaConsumer,
    KafkaConsumerFatal,
    raise_if_fatal,
)
from ledger_svc.consumer_status import CONSUMING, ConsumerStatus
from ledger_svc.domain.ledger import Balance
from ledger_svc.store.durable_files import replace_atomically
from ledger_svc.store.writer import LedgerWriter, StoreUnwritable

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)

HEARTBEAT_SECONDS = 1.0


class LedgerConsumer:
    def __init__(
        self,
        config: LedgerSettings,
        topic: str,
        writer: LedgerWriter,
        *,
        new_consumer: Callable[[], KafkaConsumer],
        inspector: IncarnationInspector,
        dead_letters: DeadLetterSink,
        fences: FenceJudge,
    ):
        self._config = config
        self._topic = topic
        self._writer = writer
        self._dead_letters = dead_letters
        self._fences = fences
        self._new_consumer = new_consumer
        self._consumer = new_consumer()
        self._guard = IncarnationGuard(config, topic, writer, inspector)
        self._assigned: set[int] = set()
        self._unassigned_since: float | None = None  # monotonic; None while partitions are assigned
        self._pending: Batch | None = None
        self._balance = writer.balance()
        self._total_file_current = False
        self._paused = False
        self._status = ConsumerStatus(state="starting")
        self._last_heartbeat = 0.0

    def run(self, stop: threading.Event) -> None:
        metrics.TOTAL.set(self._balance.total)
        metrics.COUNT.set(self._balance.count)
        self._write_total_file(self._balance)
        self._subscribe()
        log.info("consuming", extra={"topic": self._topic, "group_id": self._config.group_id})
        try:
            while not stop.is_set():
                try:
                    self._turn(stop)
                except KafkaConsumerFatal as fatal:
                    self._rejoin_if_fenced_by_own_join(fatal)
        finally:
            self._close(self._consumer)
            self._set_status("stopped", reason="shutting down")
            self._dead_letters.close(5)

    def _turn(self, stop: threading.Event) -> None:
        if self._pending is None:
            # Only between batches: a reset checkpoint must not be overwritten by a batch read before it.
            self._guard_logs()
            self._rejoin_if_left_out()
            self._pending = self._receive()
        if self._pending is not None and not self._finish(self._pending):
            self._wait_while_degraded(stop)
        self._heartbeat()

    def _receive(self) -> Batch | None:
        messages = self._consumer.consume(self._config.batch_max_messages, self._config.batch_wait_seconds)
        batch = Batch()
        for message in messages:
            error = message.error()
            if error is None:
                batch.add(message, self._topic, self._config.group_id)
                continue
            raise_if_fatal(error)
            if error.code() != KafkaError._PARTITION_EOF:
                log.warning(
                    "kafka consumer error", extra={"kafka_error": error.name(), "detail": error.str()}
                )
        return batch if batch.read_up_to else None

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
            plan = self._writer.commit_batch(batch.deliveries, [p for _, p in batch.poison], batch.read_up_to)
        metrics.BATCH_COMMIT_DURATION.observe(time.perf_counter() - started)
        batch.committed = True
        self._balance = plan.balance
        self._total_file_current = False
        try:
            # Informational only (lag tooling reads it); the store already holds the offsets.
            self._consumer.commit(
                offsets=[TopicPartition(t, p, o) for (t, p), (o, _) in batch.read_up_to.items()],
                asynchronous=True,
            )
        except KafkaException as exc:
            log.warning("could not mirror offsets to Kafka", extra={"reason": str(exc)})
        batch.report(plan)

    def _write_total_file(self, balance: Balance) -> None:
        replace_atomically(self._config.total_file, f"{balance.total}\n")
        self._total_file_current = True

    def _wait_while_degraded(self, stop: threading.Event) -> None:
        if self._assigned:
            self._consumer.pause(self._partitions(self._assigned))
            self._paused = True
        deadline = time.monotonic() + self._config.retry_interval_seconds
        while not stop.is_set() and time.monotonic() < deadline:
            # Polling keeps group membership; what it might still return is re-read after the seek.
            message = self._consumer.poll(0.2)
            if message is not None and (error := message.error()) is not None:
                raise_if_fatal(error)
            self._heartbeat()
        try:
            self._writer.reopen()
        except StoreUnwritable as exc:
            log.warning("store still unwritable", extra={"reason": str(exc)})

    def _resume_from_store(self) -> None:
        checkpoints = self._writer.checkpoints(self._topic)
        verified = self._assigned - self._guard.unverified
        for partition in verified:
            checkpoint = checkpoints.get(partition)
            self._consumer.seek(
                TopicPartition(
                    self._topic, partition, checkpoint.next_offset if checkpoint else OFFSET_BEGINNING
                )
            )
        self._consumer.resume(self._partitions(verified))
        self._paused = False

    def _guard_logs(self) -> None:
        restarted = self._guard.guard(self._consumer, sorted(self._assigned))
        if restarted:
            self._reconnect(sorted(restarted))

    def _rejoin_if_left_out(self) -> None:
        if self._unassigned_since is None:
            return
        waited = time.monotonic() - self._unassigned_since
        if waited < self._config.rejoin_after_seconds:
            return
        log.warning(
            "subscribed without partitions for too long; rejoining the consumer group with a new consumer",
            extra={"seconds_without_partitions": round(waited, 1), "group_id": self._config.group_id},
        )
        metrics.CONSUMER_REJOINS.inc()
        with tracer.start_as_current_span(
            "ledger rejoin kafka group", attributes={"ledger.seconds_without_partitions": waited}
        ):
            self._replace_consumer()

    def _rejoin_if_fenced_by_own_join(self, fatal: KafkaConsumerFatal) -> None:
        self._set_status("rebalancing", reason="fenced: waiting to see whether another member holds the id")
        log.warning(
            "the consumer was fenced; watching whether the member that fenced it lives",
            extra={"reason": str(fatal), "group_instance_id": self._config.group_instance_id},
        )
        refusal = self._fences.refusal(waiting=self._heartbeat)
        if refusal:
            raise KafkaConsumerFatal(f"{fatal}; {refusal}") from fatal
        log.warning("the consumer was fenced by a join of its own that Kafka processed late; rejoining")
        metrics.CONSUMER_OWN_FENCES.inc()
        with tracer.start_as_current_span("ledger rejoin after own fence"):
            # As on a revoke: the new consumer's assignment seeks back to the store's offsets.
            if self._pending is not None and not self._pending.committed:
                self._pending.end_spans()
                self._pending = None
            self._replace_consumer()

    def _on_assign(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:  # a replaced consumer, still closing
            return
        checkpoints = self._writer.checkpoints(self._topic)
        for tp in partitions:
            checkpoint = checkpoints.get(tp.partition)
            tp.offset = checkpoint.next_offset if checkpoint else OFFSET_BEGINNING
        consumer.assign(partitions)
        # Nothing is read until the guard has seen which log Kafka serves (the next loop turn).
        consumer.pause(partitions)
        self._assigned = {tp.partition for tp in partitions}
        self._guard.hold(self._assigned)
        if self._assigned:
            self._unassigned_since = None
        elif self._unassigned_since is None:
            self._unassigned_since = time.monotonic()
        self._paused = False
        log.info("partitions assigned", extra={"resume_at": {tp.partition: tp.offset for tp in partitions}})
        self._set_status(CONSUMING if self._pending is None else self._status.state)

    def _on_revoke(self, consumer: KafkaConsumer, partitions: list[TopicPartition]) -> None:
        if consumer is not self._consumer:  # a replaced consumer, still closing: it only lets go
            consumer.unassign()
            return
        # An unfinished batch is dropped: the next assignment seeks back to the store's offsets.
        if self._pending is not None and not self._pending.committed:
            self._pending.end_spans()
            self._pending = None
        consumer.unassign()
        self._assigned = set()
        if self._unassigned_since is None:
            self._unassigned_since = time.monotonic()
        self._guard.forget()
        log.info("partitions revoked", extra={"partitions": [tp.partition for tp in partitions]})
        self._set_status("rebalancing")

    def _subscribe(self) -> None:
        self._unassigned_since = time.monotonic()
        self._consumer.subscribe(
            [self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_revoke
        )

    def _reconnect(self, partitions: list[int]) -> None:
        """Read a log that started again through new Kafka clients: librdkafka keeps the partition
        leader epochs of the old log and ignores the new log's lower ones, so the old clients would wait
        for a leader forever. Static membership hands the partitions straight back, and the guard
        verifies them against the checkpoints it has just reset."""
        log.info("reconnecting to Kafka to read the new log", extra={"partitions": partitions})
        self._dead_letters.reconnect()
        self._replace_consumer()

    def _replace_consumer(self) -> None:
        # The new consumer only joins (subscribe) once the old one is closed or given up on.
        replaced, self._consumer = self._consumer, self._new_consumer()
        # close() revokes through the callback only where the group still knew this member.
        self._assigned = set()
        self._close(replaced)
        self._guard.forget()
        self._subscribe()
        self._set_status("rebalancing")

    def _close(self, consumer: KafkaConsumer) -> None:
        timeout = self._config.consumer_close_timeout_seconds
        if not close_within(consumer, timeout):
            metrics.CONSUMER_CLOSE_TIMEOUTS.inc()
            log.warning(
                "the Kafka consumer did not close in time; it goes on closing in the background",
                extra={"timeout_seconds": timeout},
            )

    def _partitions(self, partitions: set[int]) -> list[TopicPartition]:
        return [TopicPartition(self._topic, p) for p in sorted(partitions)]

    def _set_status(self, state: str, reason: str = "") -> None:
        unverified = sorted(self._guard.unverified)
        self._status = ConsumerStatus(
            state,
            sorted(self._assigned),
            reason,
            unverified=unverified,
            log_problem=self._guard.problem if unverified else "",
        )
        metrics.PARTITIONS_UNVERIFIED.set(len(unverified))
        consumer_status.write(self._config.status_file, self._status)
        self._last_heartbeat = time.monotonic()

    def _heartbeat(self) -> None:
        if time.monotonic() - self._last_heartbeat >= HEARTBEAT_SECONDS:
            self._set_status(self._status.state, self._status.reason)
