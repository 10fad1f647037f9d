"""Kafka adapter: publishes SumComputed with an idempotent, acks=all producer."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from distsum import event_codec, telemetry
from distsum.domain import SumComputed
from distsum.kafka import clients as kafka_clients
from distsum.kafka.diagnostics import KafkaDiagnostics
from distsum.processes import name_os_thread
from sum_svc import metrics

log = logging.getLogger(__name__)
tracer = trace.get_tracer(__name__)


class KafkaDeliveryError(RuntimeError):
    pass


# A delivery report as the poller thread saw it: the publication, Kafka's error, partition and offset.
_Report = tuple["_Pending", KafkaError | None, int, int]


class _Pending:
    """One event between produce() and its delivery report."""

    __slots__ = ("delivery", "reports", "span", "started")

    def __init__(self, delivery: asyncio.Future[None], span: Span, started: float, reports: deque[_Report]):
        self.delivery = delivery
        self.span = span
        self.started = started
        self.reports = reports

    def reported(self, error: KafkaError | None, message: Message) -> None:
        """On the poller thread (or a flushing one): only queue the outcome; the loop settles it."""
        # A refused event may carry no partition or offset; only acknowledged ones are read.
        self.reports.append((self, error, message.partition() or 0, message.offset() or 0))

    def settle(self, error: KafkaError | None, partition: int, offset: int) -> None:
        metrics.PRODUCE_DURATION.observe(time.monotonic() - self.started)
        span = self.span
        if error is not None:
            metrics.PRODUCE_ERRORS.labels(reason=error.name()).inc()
            span.set_status(Status(StatusCode.ERROR, error.str()))
            outcome: BaseException | None = KafkaDeliveryError(error.str())
        else:
            if span.is_recording():
                span.set_attribute("messaging.destination.partition.id", str(partition))
                span.set_attribute("messaging.kafka.offset", offset)
            outcome = None
        span.end()
        if self.delivery.done():
            return
        if outcome is None:
            self.delivery.set_result(None)
        else:
            self.delivery.set_exception(outcome)


class KafkaPublisher:
    """Produces from the event loop; a poller thread serves librdkafka's delivery reports and hands
    them back to the loop in batches, one wake-up per poll instead of one thread hop per event."""

    def __init__(
        self,
        bootstrap_servers: str,
        topic: str,
        delivery_timeout: float,
        *,
        linger_ms: int,
        client_id: str,
        loop: asyncio.AbstractEventLoop,
        on_log_lost: Callable[[], None],
        security: Mapping[str, Any] | None = None,
    ):
        self._topic = topic
        self._loop = loop
        self._on_log_lost = on_log_lost
        self._diagnostics = KafkaDiagnostics(log)
        self._config = kafka_clients.producer_config(
            bootstrap_servers,
            log,
            {
                "client.id": client_id,
                "linger.ms": linger_ms,
                # Past this librdkafka gives up and reports failure, which releases the request id.
                "message.timeout.ms": int(delivery_timeout * 1000),
                # Same key-to-partition mapping as Java clients, so duplicates share a partition everywhere.
                "partitioner": "murmur2_random",
                "error_cb": self._on_error,
            },
            security=security,
        )
        # Held around produce() and the producer's replacement, so no event is queued on a producer
        # that is no longer polled.
        self._lock = threading.Lock()
        self._producer = Producer(self._config)
        self._reports: deque[_Report] = deque()
        self._replace_because = ""  # set (by error_cb or the probe) for the poller thread to act on
        self._cluster_id: str | None = None
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll_forever, name="kafka-delivery-reports", daemon=True)
        self._poller.start()

    def publish(self, event: SumComputed, delivery: asyncio.Future[None]) -> None:
        span = tracer.start_span(
            f"{self._topic} publish",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "publish",
                "messaging.destination.name": self._topic,
                "messaging.kafka.message.key": event.request_id,
            },
        )
        pending = _Pending(delivery, span, time.monotonic(), self._reports)
        try:
            with self._lock:
                self._producer.produce(
                    self._topic,
                    key=event.request_id.encode(),
                    value=event_codec.encode(event),
                    headers=telemetry.headers_for_span(span),
                    on_delivery=pending.reported,
                )
        except (BufferError, KafkaException) as exc:
            metrics.PRODUCE_ERRORS.labels(reason=type(exc).__name__).inc()
            span.set_status(Status(StatusCode.ERROR, str(exc)))
            span.end()
            raise

    def probe(self, timeout: float) -> bool:
        """True when a broker answered metadata for our topic, with a leader for every partition."""
        try:
            with self._lock:
                producer = self._producer
            metadata = producer.list_topics(self._topic, timeout=timeout)
        except KafkaException:
            return False
        self._notice_cluster(metadata.cluster_id)
        topic = metadata.topics.get(self._topic)
        if topic is None or topic.error is not None or not topic.partitions:
            return False
        return all(p.leader >= 0 for p in topic.partitions.values())

    def close(self, timeout: float) -> None:
        """Wait up to timeout for queued events to be acknowledged, then stop."""
        with self._lock:
            remaining = self._producer.flush(timeout)
        if remaining:
            log.warning("stopping with unacknowledged events", extra={"unacknowledged": remaining})
        self._stopping.set()
        self._poller.join(timeout=5)

    def _on_error(self, error: KafkaError) -> None:
        self._diagnostics.on_error(error)
        if error.fatal():
            # A fatal idempotence error leaves the producer unusable.
            self._replace_because = "fatal_error"

    def _notice_cluster(self, cluster_id: str | None) -> None:
        """A Kafka cluster that lost its data comes back with another id and lower partition leader
        epochs, which librdkafka ignores as outdated: the producer would never find a leader again."""
        if cluster_id is None:
            return
        if self._cluster_id is not None and cluster_id != self._cluster_id:
            log.warning(
                "Kafka cluster id changed (the brokers lost their data); replacing the producer",
                extra={"old_cluster_id": self._cluster_id, "new_cluster_id": cluster_id},
            )
            self._replace_because = "cluster_changed"
            self._loop.call_soon_threadsafe(self._on_log_lost)
        self._cluster_id = cluster_id

    def _poll_forever(self) -> None:
        name_os_thread("kafka-delivery")
        while not self._stopping.is_set():
            try:
                self._poll_once()
            except Exception:
                # This thread is the only one serving delivery reports: were it to end, every Add would
                # time out while health still said SERVING. Log, pause, carry on.
                metrics.POLLER_ERRORS.inc()
                log.exception("serving kafka delivery reports failed; carrying on")
                self._stopping.wait(0.5)

    def _poll_once(self) -> None:
        if self._replace_because:
            self._replace_producer()
        with self._lock:
            producer = self._producer
        try:
            producer.poll(0.1)
        except KafkaException as exc:
            # confluent-kafka raises a fatal error (an idempotence failure, say) from poll() instead of
            # passing it to error_cb: the producer is unusable, and only a new one can go on.
            error = exc.args[0] if exc.args else None
            if not (isinstance(error, KafkaError) and error.fatal()):
                raise
            self._on_error(error)
        if self._reports:
            try:
                self._loop.call_soon_threadsafe(self._settle_reports)
            except RuntimeError:  # the loop is closed: nobody waits for these outcomes any more
                self._reports.clear()

    def _settle_reports(self) -> None:
        """On the loop: complete the publications Kafka has reported on."""
        reports = self._reports
        while reports:
            pending, error, partition, offset = reports.popleft()
            pending.settle(error, partition, offset)

    def _replace_producer(self) -> None:
        # What the old producer still holds fails (those clients get UNAVAILABLE and retry with the same
        # request_id) and a fresh producer carries on.
        reason = self._replace_because
        log.error("replacing the kafka producer", extra={"reason": reason})
        metrics.PRODUCER_REPLACEMENTS.labels(reason=reason).inc()
        with self._lock:
            old, self._producer = self._producer, Producer(self._config)
            self._replace_because = ""
        kafka_clients.retire_producer(old, log, 5)
