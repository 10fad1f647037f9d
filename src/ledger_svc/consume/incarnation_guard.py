"""Before the consumer reads a partition, and every few seconds while it does: is the incarnation of the
topic Kafka serves (its log) the one the store's checkpoint belongs to? (The decision itself is
incarnation.judge.) Newly assigned partitions stay paused until it is shown."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicPartition
from opentelemetry import trace

from ledger_svc.config import LedgerSettings
from ledger_svc.consume import metrics
from ledger_svc.consume.ports import IncarnationInspector, IncarnationUnknown, KafkaConsumer
from ledger_svc.domain.incarnation import Checkpoint, Incarnation, Match, Verdict, judge
from ledger_svc.store.writer import LedgerWriter, StoreUnwritable

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(frozen=True, slots=True)
class GuardPlan:
    """Where each partition goes on (an offset to seek to, or None to read on from where it is), whose
    log started again, and which wait, with why (Kafka listed no offsets for them)."""

    seek: dict[int, int | None]
    restarted: set[int]
    held: dict[int, str]


class IncarnationGuard:
    def __init__(
        self, config: LedgerSettings, topic: str, writer: LedgerWriter, inspector: IncarnationInspector
    ):
        self._config = config
        self._topic = topic
        self._writer = writer
        self._inspector = inspector
        self.unverified: set[int] = set()  # assigned, paused until their log has been seen
        self.problem = ""  # why they still wait, for /readyz
        self._next_check = 0.0

    def hold(self, partitions: set[int]) -> None:
        """Newly assigned partitions, paused by the caller: they are checked at the next guard()."""
        self.unverified = set(partitions)
        self._next_check = 0.0

    def forget(self) -> None:
        """The partitions were revoked, or the consumer is replaced."""
        self.unverified = set()

    def guard(self, consumer: KafkaConsumer, assigned: list[int]) -> set[int]:
        """When due, check the assigned partitions' logs: pause what cannot be checked, seek and resume
        what was held, and return the partitions whose log started again (for the caller to read
        through a new consumer)."""
        now = time.monotonic()
        if now < self._next_check or not assigned:
            return set()
        interval = (
            self._config.retry_interval_seconds
            if self.unverified
            else self._config.log_check_interval_seconds
        )
        self._next_check = now + interval
        try:
            plan = self.check(assigned, self.unverified)
        except (IncarnationUnknown, StoreUnwritable) as exc:
            # Kafka may come back with another log (a replaced broker): hold everything until it is seen.
            self._hold(consumer, set(assigned), str(exc))
            return set()
        if plan.restarted:
            return plan.restarted
        unsettled, problems = set(plan.held), set(plan.held.values())
        for partition, offset in plan.seek.items():
            if offset is not None:
                try:
                    consumer.seek(TopicPartition(self._topic, partition, offset))
                except KafkaException as exc:  # checked again, paused, at the next try
                    unsettled.add(partition)
                    problems.add(f"seek of partition {partition} failed: {exc}")
        verified = self.unverified - unsettled
        if unsettled:
            self._hold(consumer, unsettled, "; ".join(sorted(problems)))
        consumer.resume([TopicPartition(self._topic, p) for p in sorted(verified)])
        if verified:
            log.info("partitions' Kafka logs verified; consuming", extra={"partitions": sorted(verified)})
        self.unverified = unsettled
        self.problem = self.problem if unsettled else ""
        return set()

    def _hold(self, consumer: KafkaConsumer, partitions: set[int], problem: str) -> None:
        """Pause partitions until the next try; once resumed, they go on from their checkpoints."""
        if problem != self.problem:
            log.warning(
                "partitions paused until Kafka shows which log it serves",
                extra={"partitions": sorted(partitions), "reason": problem},
            )
        self.problem = problem
        consumer.pause([TopicPartition(self._topic, p) for p in sorted(partitions)])
        self.unverified |= partitions
        self._next_check = time.monotonic() + self._config.retry_interval_seconds

    def check(self, assigned: list[int], unverified: set[int]) -> GuardPlan:
        """What each assigned partition does next (see GuardPlan); the checkpoints of logs that started
        again are reset to the log's start. Partitions in unverified (paused) go on from their
        checkpoints only where the log is shown to be the same; the others restart only on evidence of a
        new log. Raises IncarnationUnknown, and StoreUnwritable, before anything is decided."""
        with tracer.start_as_current_span(
            "ledger check kafka log", attributes={"ledger.partitions.unverified": len(unverified)}
        ) as span:
            plan = self._check(assigned, unverified)
            span.set_attribute("ledger.partitions.restarted", len(plan.restarted))
            span.set_attribute("ledger.partitions.held", len(plan.held))
        return plan

    def _check(self, assigned: list[int], unverified: set[int]) -> GuardPlan:
        checkpoints = self._writer.checkpoints(self._topic)
        # The record before the checkpoint is read once per assignment: cheap, and it catches a log
        # that kept its ids but not its records.
        keys_at = {
            p: c.next_offset - 1
            for p, c in checkpoints.items()
            if p in unverified and c.last_key is not None and c.next_offset > 0
        }
        state = self._inspector.inspect(assigned, keys_at)
        decisions: dict[int, int | None] = {}
        updated: dict[int, Checkpoint] = {}
        restarted: set[int] = set()
        for partition in state.partitions:
            checkpoint, kafka = checkpoints.get(partition), state.partitions[partition]
            verdict = judge(checkpoint, state.incarnation, kafka)
            restart = verdict.match is Match.NEW or (
                verdict.match is Match.UNPROVEN and partition in unverified
            )
            if restart:
                updated[partition] = Checkpoint(kafka.start, state.incarnation)
                decisions[partition] = kafka.start
                restarted.add(partition)
                self._warn_restart(partition, verdict, checkpoint, state.incarnation)
                continue
            # A paused partition is sought to its checkpoint even where it was assigned there: a seek
            # that failed before may have left it elsewhere.
            resume_at = max(kafka.start, checkpoint.next_offset if checkpoint else 0)
            decisions[partition] = resume_at if partition in unverified else None
            if verdict.match is Match.UNREAD or (checkpoint is not None and checkpoint.next_offset < 0):
                updated[partition] = Checkpoint(kafka.start, state.incarnation)
            elif checkpoint is not None and checkpoint.incarnation is None and state.incarnation is not None:
                # A store from before logs were recorded, shown to be on this log by its record.
                updated[partition] = Checkpoint(
                    checkpoint.next_offset, state.incarnation, checkpoint.last_key
                )
            if verdict.expired and partition in unverified:
                log.error(
                    "Kafka deleted records the ledger never read (retention); they are not in the total",
                    extra={"partition": partition, "records": verdict.expired, "log": str(state.incarnation)},
                )
        if updated:
            self._writer.save_checkpoints(self._topic, updated)
        for partition, kafka in state.partitions.items():  # as the checkpoints now say
            checkpoint = updated.get(partition, checkpoints.get(partition))
            read_up_to = max(kafka.start, checkpoint.next_offset if checkpoint else 0)
            metrics.CONSUMER_LAG.labels(partition=str(partition)).set(max(0, kafka.end - read_up_to))
        return GuardPlan(decisions, restarted, state.unknown)

    def _warn_restart(
        self, partition: int, verdict: Verdict, checkpoint: Checkpoint | None, current: Incarnation | None
    ) -> None:
        metrics.LOG_RESTARTS.labels(reason=verdict.reason).inc()
        log.warning(
            "the Kafka log of a partition is not the one the store's offsets belong to; reading it again"
            " from its start (request ids skip what is already applied)",
            extra={
                "topic": self._topic,
                "partition": partition,
                "reason": verdict.reason,
                "detail": verdict.detail,
                "stored_log": str(checkpoint.incarnation)
                if checkpoint and checkpoint.incarnation
                else "unknown",
                "stored_next_offset": checkpoint.next_offset if checkpoint else None,
                "current_log": str(current) if current else "unknown",
            },
        )
