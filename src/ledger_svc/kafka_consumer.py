"""The ledger's Kafka consumer client, and the consumer lag it reports."""

from __future__ import annotations

import logging
import time

from confluent_kafka import Consumer, KafkaException, TopicPartition

from distsum.kafka_client_log import KafkaClientLog
from distsum.settings import KafkaSettings
from ledger_svc import metrics
from ledger_svc.config import LedgerSettings

log = logging.getLogger(__name__)

LAG_REFRESH_SECONDS = 5.0


def new_consumer(config: LedgerSettings, kafka: KafkaSettings) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": kafka.bootstrap_servers,
            "group.id": config.group_id,
            # Static membership: a restarted ledger gets its partitions back at once, without waiting
            # out the session timeout of its previous incarnation.
            "group.instance.id": config.group_instance_id,
            "session.timeout.ms": 15_000,
            "client.id": "ledger",
            # The store, not Kafka, decides where to resume; Kafka commits are informational.
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "isolation.level": "read_committed",
            "reconnect.backoff.max.ms": 1000,
            **KafkaClientLog(log).config(),
        }
    )


class LagReporter:
    """Sets ledger_consumer_lag from the partitions' high watermarks. Each refresh asks the broker, so
    it runs every few seconds rather than after every batch."""

    def __init__(self, consumer: Consumer, topic: str, interval: float = LAG_REFRESH_SECONDS):
        self._consumer = consumer
        self._topic = topic
        self._interval = interval
        self._last_refresh = 0.0

    def refresh_if_due(self, committed_offsets: dict[int, int]) -> None:
        if time.monotonic() - self._last_refresh < self._interval:
            return
        self._last_refresh = time.monotonic()
        for partition, next_offset in list(committed_offsets.items()):
            try:
                _, high = self._consumer.get_watermark_offsets(
                    TopicPartition(self._topic, partition), timeout=1.0, cached=False
                )
            except KafkaException:  # broker unreachable: keep the last value until the next refresh
                continue
            metrics.CONSUMER_LAG.labels(partition=str(partition)).set(max(0, high - next_offset))
