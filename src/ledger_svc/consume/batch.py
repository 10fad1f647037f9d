"""One consumed batch: its decoded events, poison records and spans, how far it read each partition,
and how its outcome is reported (spans, metrics, log lines) once the store has committed it."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from confluent_kafka import Message
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind

from distsum import event_codec, telemetry
from ledger_svc.consume import metrics
from ledger_svc.domain.ledger import BatchPlan, Delivery, PoisonRecord, ReadUpTo

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


@dataclass(slots=True)
class Batch:
    deliveries: list[Delivery] = field(default_factory=list)
    poison: list[tuple[Message, PoisonRecord]] = field(default_factory=list)
    read_up_to: ReadUpTo = field(default_factory=dict)
    spans: dict[tuple[int, int], Span] = field(default_factory=dict)
    dead_lettered: bool = False
    committed: bool = False

    def add(self, message: Message, default_topic: str, group_id: str) -> None:
        topic, partition, offset = _position(message, default_topic)
        self.read_up_to[(topic, partition)] = (offset + 1, message.key() or b"")
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
                "messaging.consumer.group.name": group_id,
            },
        )
        self.spans[(partition, offset)] = span
        try:
            event = event_codec.decode(message.value())
        except event_codec.PoisonMessage as exc:
            span.set_attribute("ledger.outcome", "dead_letter")
            self.poison.append((message, PoisonRecord(topic, partition, offset, str(exc))))
            return
        span.set_attribute("messaging.kafka.message.key", event.request_id)
        self.deliveries.append(Delivery(event, topic, partition, offset))

    def end_spans(self) -> None:
        for span in self.spans.values():
            span.end()

    def report(self, plan: BatchPlan) -> None:
        """Spans, metrics and log lines of a committed batch."""
        now = time.time()
        for delivery in plan.to_apply:
            metrics.QUEUE_LATENCY.observe(max(0.0, now - delivery.event.produced_at.timestamp()))
        for outcome, deliveries in (
            ("applied", plan.to_apply),
            ("duplicate", plan.duplicates),
            ("conflict", plan.conflicts),
        ):
            for delivery in deliveries:
                self.spans[(delivery.partition, delivery.offset)].set_attribute("ledger.outcome", outcome)
        self.end_spans()
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
                "dead_letters": len(self.poison),
                "total": str(plan.balance.total),
                "count": plan.balance.count,
            },
        )


def _position(message: Message, default_topic: str) -> tuple[str, int, int]:
    partition, offset = message.partition(), message.offset()
    if partition is None or offset is None:
        raise ValueError("a consumed record without partition or offset")
    return message.topic() or default_topic, partition, offset
