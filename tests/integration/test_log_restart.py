"""The Kafka log starts again under the ledger's stored offsets: nothing is skipped, nothing counted twice.

Each scenario adds 300 events, makes Kafka start the topic's log again, then adds 900 more (so every
partition of the new log grows past the offset the store holds for it) and checks the total, the count
and the total file, the warning, the metric and readiness."""

from __future__ import annotations

import json
import sqlite3
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaException, TopicPartition

from distsum.clients.ledger import http_json
from distsum.clients.waiting import wait_until
from distsum.kafka import clients as kafka_clients
from ledger_svc.store.schema import STORE_FILE
from localstack.kafka_broker import KafkaBroker, create_topic
from localstack.stack import Ledger, SumService
from tests.conftest import PARTITIONS, Topic, make_topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory, add_many, producer
from tests.services import sample, samples

BEFORE, AFTER = 300, 900
# Seconds, so that a topic created again under a running ledger is noticed at once.
LEDGER_ENV = {"LEDGER_LOG_CHECK_INTERVAL_SECONDS": "1"}


@pytest.fixture
def own_broker(kafka_libs: Path, tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own, since the test wipes it."""
    with KafkaBroker(kafka_libs, tmp_path / "kafka") as broker:
        yield broker


def stored_offsets(ledger: Ledger) -> dict[int, int]:
    connection = sqlite3.connect(f"file:{ledger.data_dir / STORE_FILE}?mode=ro", uri=True)
    try:
        return dict(connection.execute("SELECT partition, next_offset FROM offsets").fetchall())
    finally:
        connection.close()


def end_offsets(topic: Topic) -> dict[int, int]:
    admin = kafka_clients.admin(topic.bootstrap)
    metadata = admin.list_topics(topic.name, timeout=10).topics[topic.name]
    consumer = Consumer({"bootstrap.servers": topic.bootstrap, "group.id": "offsets-reader"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic.name, p), timeout=10)[1]
            for p in metadata.partitions
        }
    finally:
        consumer.close()


def restarts(ledger: Ledger) -> dict[str, float]:
    """ledger_log_restarts_total by reason."""
    return {
        labels["reason"]: value for labels, value in samples(ledger.metrics_url, "ledger_log_restarts_total")
    }


def restart_warnings(ledger: Ledger) -> list[dict[str, object]]:
    lines = ledger.process.log_path.read_text(errors="replace").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return [r for r in records if str(r.get("msg", "")).startswith("the Kafka log of a partition is not")]


def recreate_topics(topic: Topic) -> None:
    create_topic(topic.bootstrap, topic.name, PARTITIONS)
    create_topic(topic.bootstrap, topic.dead_letters, 1)


def replace_broker(broker: KafkaBroker, topic: Topic) -> None:
    """The stopped broker comes back without its data (a new cluster), and the topics are created again."""
    broker.wipe()
    broker.start()
    broker.wait_ready()
    recreate_topics(topic)


def poison_first_record(topic: Topic) -> None:
    """A poison record as the first record of partition 0 (offset 0 in every log of the topic)."""
    poison = producer(topic.bootstrap)
    poison.produce(topic.name, key=b"not-a-uuid", value=b"not a SumComputed", partition=0)
    assert poison.flush(30) == 0


def assert_new_log_outgrew(topic: Topic, stored: dict[int, int]) -> None:
    """Every partition of the new log holds more records than the store's offset for it: resuming at
    the stored offsets would skip records instead of waiting for them."""
    ends = end_offsets(topic)
    assert all(end > stored[p] for p, end in ends.items()), (stored, ends)


def assert_exact(ledger: Ledger, acknowledged: dict[str, int]) -> None:
    body = ledger.client.wait_count(len(acknowledged), timeout=90)
    assert body["total"] == str(sum(acknowledged.values()))
    ledger.wait_total_file(body["total"])


def assert_warned(ledger: Ledger, reason: str) -> None:
    warnings = restart_warnings(ledger)
    assert {w["partition"] for w in warnings if w["reason"] == reason} == set(range(PARTITIONS)), warnings
    assert all(w["stored_log"] != w["current_log"] for w in warnings)
    assert restarts(ledger).get(reason) == PARTITIONS


def counted_before(
    topic: Topic, start_ledger: LedgerFactory, start_sum_service: SumServiceFactory
) -> tuple[Ledger, SumService, dict[str, int]]:
    """A ledger and a sum service on the topic, and the first events they counted."""
    ledger = start_ledger(topic, **LEDGER_ENV)
    service = start_sum_service(topic)
    acknowledged = add_many(service, BEFORE, 0)
    ledger.client.wait_count(BEFORE)
    return ledger, service, acknowledged


def test_broker_data_wiped_while_the_ledger_was_stopped(
    own_broker: KafkaBroker, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    topic = make_topic(own_broker)
    ledger = start_ledger(topic, **LEDGER_ENV)
    acknowledged = add_many(start_sum_service(topic, name="sum-before"), BEFORE, 0)
    ledger.client.wait_count(BEFORE)
    ledger.process.stop()
    stored = stored_offsets(ledger)

    own_broker.stop()
    replace_broker(own_broker, topic)
    acknowledged |= add_many(start_sum_service(topic, name="sum-after"), AFTER, BEFORE)
    assert_new_log_outgrew(topic, stored)

    ledger.restart()
    assert_exact(ledger, acknowledged)
    assert_warned(ledger, "cluster_id_changed")


def test_topic_created_again_under_a_running_ledger(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    poison_first_record(topic)
    ledger, service, acknowledged = counted_before(topic, start_ledger, start_sum_service)
    stored = stored_offsets(ledger)

    admin = kafka_clients.admin(topic.bootstrap)
    admin.delete_topics([topic.name], operation_timeout=30)[topic.name].result(30)

    def gone() -> bool:
        try:
            return topic.name not in admin.list_topics(timeout=5).topics
        except KafkaException:
            return False

    wait_until(gone, 30, "the topic to be deleted")
    wait_until(lambda: http_json(f"{ledger.url}/readyz")[0] == 503, 30, "the ledger to report not ready")
    recreate_topics(topic)
    poison_first_record(topic)
    acknowledged |= add_many(service, AFTER, BEFORE)
    assert_new_log_outgrew(topic, stored)

    assert_exact(ledger, acknowledged)
    assert_warned(ledger, "topic_id_changed")
    ledger.wait_ready()
    # Two poison records at offset 0 of partition 0, one in each log: both are dead letters.
    wait_until(lambda: ledger.total()["dead_letters"] == 2, 30, "both poison records to be counted")


def test_broker_replaced_under_a_running_ledger(
    own_broker: KafkaBroker, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    topic = make_topic(own_broker)
    ledger, service, acknowledged = counted_before(topic, start_ledger, start_sum_service)
    stored = stored_offsets(ledger)

    own_broker.stop()
    wait_until(
        lambda: "is not verified yet" in json.dumps(http_json(f"{ledger.url}/readyz")),
        30,
        "the ledger to report its partitions' log unknown",
    )
    replace_broker(own_broker, topic)
    acknowledged |= add_many(service, AFTER, BEFORE)
    assert_new_log_outgrew(topic, stored)
    poison = producer(topic.bootstrap)
    poison.produce(topic.name, key=b"not-a-uuid", value=b"not a SumComputed")
    assert poison.flush(30) == 0

    assert_exact(ledger, acknowledged)
    assert_warned(ledger, "cluster_id_changed")
    ledger.wait_ready()
    # The sum service and the ledger's dead-letter producer go on publishing to the new cluster.
    assert sample(service.metrics_url, "sum_kafka_producer_replacements_total", reason="cluster_changed") == 1
    # An id acknowledged by the lost log is published again when retried, not answered from memory
    # (its event might never have reached the ledger), and still counted once.
    request_id, total = next(iter(acknowledged.items()))
    assert not service.client().add(request_id, total - 1, 1).replayed
    assert_exact(ledger, acknowledged)
    wait_until(lambda: ledger.total()["dead_letters"] == 1, 30, "the poison record to be dead-lettered")


def test_a_ledger_restarted_on_the_same_log_reads_nothing_again(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger, service, acknowledged = counted_before(topic, start_ledger, start_sum_service)
    ledger.process.kill()
    ledger.restart()
    acknowledged |= add_many(service, 100, BEFORE)

    assert_exact(ledger, acknowledged)
    assert restart_warnings(ledger) == []
    assert set(restarts(ledger).values()) == {0}
    text = urllib.request.urlopen(ledger.metrics_url, timeout=5).read().decode()
    assert "ledger_duplicates_skipped_total 0.0" in text
