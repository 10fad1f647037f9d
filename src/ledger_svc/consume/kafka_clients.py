"""The ledger's Kafka clients: the consumer and its fatal errors, what Kafka says about the log it serves,
and the producer of poison records to the dead-letter topic."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future
from typing import Any, cast

from confluent_kafka import (
    Consumer,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicCollection,
    TopicPartition,
    Uuid,
)

# Where the class lives: confluent_kafka.admin re-exports it without listing it in __all__.
from confluent_kafka.admin._listoffsets import OffsetSpec

from distsum.kafka import clients as kafka_clients
from distsum.kafka.security import client_security
from distsum.settings import KafkaSettings
from ledger_svc.config import LedgerSettings
from ledger_svc.consume.ports import DeadLetterFailed, IncarnationUnknown, KafkaConsumer
from ledger_svc.domain.incarnation import Incarnation, IncarnationState, offsets_problem

log = logging.getLogger(__name__)

_REQUEST_TIMEOUT = 5.0


def close_within(consumer: KafkaConsumer, timeout: float) -> bool:
    """Close the consumer, waiting at most timeout seconds; False if it is still closing then, on a daemon
    thread (which serves its last rebalance callbacks)."""
    closing = threading.Thread(target=consumer.close, name="kafka-consumer-close", daemon=True)
    closing.start()
    closing.join(timeout)
    return not closing.is_alive()


class KafkaLogInspector:
    """Asks Kafka which log it serves: a few admin requests, and one fetch per record key asked for."""

    def __init__(self, config: LedgerSettings, kafka: KafkaSettings):
        self._topic = kafka.topic
        self._admin = kafka_clients.admin(kafka.bootstrap_servers, log, security=client_security(kafka))
        self._probe_config = kafka_clients.client_config(
            kafka.bootstrap_servers,
            log,
            {
                # Never joins the group (assign only) nor commits: the id only satisfies the client.
                "group.id": f"{config.group_id}-log-probe",
                "enable.auto.commit": False,
                "auto.offset.reset": "error",
                "isolation.level": "read_committed",
            },
            security=client_security(kafka),
        )

    def inspect(self, partitions: Iterable[int], keys_at: Mapping[int, int]) -> IncarnationState:
        """The log of each partition, with the key of the record at keys_at[partition] where asked."""
        partitions = list(partitions)
        try:
            cluster = self._admin.describe_cluster(request_timeout=_REQUEST_TIMEOUT)
            topic = self._admin.describe_topics(
                TopicCollection([self._topic]), request_timeout=_REQUEST_TIMEOUT
            )[self._topic]
            ends = self._offsets(partitions, OffsetSpec.latest())  # type: ignore[no-untyped-call]
            starts = self._offsets(partitions, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
            cluster_id = cluster.result(_REQUEST_TIMEOUT).cluster_id
            topic_id = _kafka_uuid(topic.result(_REQUEST_TIMEOUT).topic_id)
            first = {tp.partition: f.result(_REQUEST_TIMEOUT).offset for tp, f in starts.items()}
            end = {tp.partition: f.result(_REQUEST_TIMEOUT).offset for tp, f in ends.items()}
        except (KafkaException, TimeoutError) as exc:
            raise IncarnationUnknown(f"Kafka cannot describe topic {self._topic!r}: {_reason(exc)}") from exc
        return IncarnationState.listed(
            Incarnation(cluster_id, topic_id) if cluster_id and topic_id else None,
            {p: (first[p], end[p]) for p in partitions},
            self._keys(keys_at, first, end),
        )

    def _offsets(self, partitions: list[int], spec: OffsetSpec) -> dict[TopicPartition, Future[Any]]:
        return self._admin.list_offsets(
            {TopicPartition(self._topic, p): spec for p in partitions},
            isolation_level=IsolationLevel.READ_COMMITTED,
            request_timeout=_REQUEST_TIMEOUT,
        )

    def _keys(
        self, keys_at: Mapping[int, int], first: dict[int, int], end: dict[int, int]
    ) -> dict[int, bytes]:
        """Keys of the records at the asked offsets that the log still holds (b"" for a keyless record)."""
        wanted = {
            p: o
            for p, o in keys_at.items()
            if p in first and offsets_problem(first[p], end[p]) is None and first[p] <= o < end[p]
        }
        if not wanted:
            return {}
        probe = Consumer(self._probe_config)
        keys: dict[int, bytes] = {}
        try:
            probe.assign([TopicPartition(self._topic, p, o) for p, o in wanted.items()])
            deadline = time.monotonic() + _REQUEST_TIMEOUT
            while len(keys) < len(wanted) and time.monotonic() < deadline:
                for message in probe.consume(len(wanted), 0.5):
                    partition = message.partition()
                    if (
                        message.error() is None
                        and partition in wanted
                        and message.offset() == wanted[partition]
                    ):
                        keys[partition] = message.key() or b""
                        probe.pause([TopicPartition(self._topic, partition)])
        finally:
            probe.close()
        return keys


class DeadLetterPublisher:
    def __init__(self, kafka: KafkaSettings, topic: str):
        self.topic = topic
        self._config = kafka_clients.producer_config(
            kafka.bootstrap_servers,
            log,
            {"client.id": "ledger-dead-letters", "message.timeout.ms": 30_000},
            security=client_security(kafka),
        )
        self._producer = Producer(self._config)

    def reconnect(self) -> None:
        """A new producer, for a Kafka cluster that came back without its data. Nothing is pending
        between sends, so the old one has nothing to wait for."""
        old, self._producer = self._producer, Producer(self._config)
        kafka_clients.retire_producer(old, log, 0)

    def send(self, poison: list[tuple[Message, str]], timeout: float) -> None:
        """Publish every record and wait for all acknowledgements; raise if any is missing."""
        failures: list[str] = []
        delivered = 0

        def on_delivery(error: KafkaError | None, _: Message) -> None:
            nonlocal delivered
            if error is None:
                delivered += 1
            else:
                failures.append(error.str())

        for message, reason in poison:
            headers = [
                *(message.headers() or []),
                ("dlq.reason", reason.encode()),
                ("dlq.original.topic", (message.topic() or "").encode()),
                ("dlq.original.partition", str(message.partition()).encode()),
                ("dlq.original.offset", str(message.offset()).encode()),
            ]
            self._producer.produce(
                self.topic, key=message.key(), value=message.value(), headers=headers, on_delivery=on_delivery
            )
        self._producer.flush(timeout)
        if failures or delivered != len(poison):
            raise DeadLetterFailed(
                f"{len(poison) - delivered} of {len(poison)} dead letters not acknowledged: {failures[:3]}"
            )

    def close(self, timeout: float) -> None:
        self._producer.flush(timeout)


def _kafka_uuid(value: Uuid | None) -> str | None:
    """A topic id as Kafka's own tools print it (URL-safe base64 of its 16 bytes, unpadded)."""
    if value is None:
        return None
    halves = cast(Any, value)  # the package's stub omits the accessors
    raw = b"".join(
        (bits & (2**64 - 1)).to_bytes(8, "big")
        for bits in (halves.get_most_significant_bits(), halves.get_least_significant_bits())
    )
    if raw == bytes(16):  # Kafka's "zero" id: the broker keeps no topic ids
        return None
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _reason(exc: BaseException) -> str:
    error = exc.args[0] if exc.args else None
    if isinstance(error, KafkaError):
        return str(error.str())
    return str(exc) or type(exc).__name__
