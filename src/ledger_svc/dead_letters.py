"""Kafka adapter for poison records: each goes to the dead-letter topic with the reason in headers."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, Message, Producer

from distsum.kafka_client_log import KafkaClientLog

log = logging.getLogger(__name__)


class DeadLetterFailed(RuntimeError):
    pass


class DeadLetterPublisher:
    def __init__(self, bootstrap_servers: str, topic: str):
        self.topic = topic
        self._config = {
            "bootstrap.servers": bootstrap_servers,
            "client.id": "ledger-dead-letters",
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": 30_000,
            **KafkaClientLog(log).config(),
        }
        self._producer = Producer(self._config)

    def reconnect(self) -> None:
        """A new producer, for a Kafka cluster that came back without its data: librdkafka would ignore
        the new cluster's partition leaders as outdated. Nothing is pending between sends."""
        self._producer.flush(0)
        self._producer = Producer(self._config)

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
