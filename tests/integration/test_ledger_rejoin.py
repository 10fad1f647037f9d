"""A ledger left in its group without partitions replaces its consumer and rejoins (the watchdog against
static members that never rejoin after the group coordinator restarted), and consumes once it gets them."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from confluent_kafka import Consumer

from distsum import event_codec
from distsum.clients.waiting import wait_until
from distsum.domain import SumComputed
from localstack.kafka_broker import KafkaBroker, create_topic
from localstack.stack import Ledger
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, producer
from tests.services import sample

EVENTS = 50
REJOIN_AFTER_SECONDS = 20  # the lowest the setting allows


class Hog:
    """A member of the ledger's group that holds the topic's only partition while it polls."""

    def __init__(self, topic: Topic):
        self._consumer = Consumer(
            {
                "bootstrap.servers": topic.bootstrap,
                "group.id": f"ledger-{topic.name}",
                # Partitions go to members in the order of their ids: "a-hog-..." sorts before the ledger,
                # so the only partition stays here through every rebalance the ledger's joins start.
                "client.id": "a-hog",
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topic.name])
        self.holds = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        # Only a polling member takes part in the rebalances; closing it (dynamic) leaves the group at once.
        while not self._stop.is_set():
            self._consumer.poll(0.2)
            if self._consumer.assignment():
                self.holds.set()
        self._consumer.close()

    def leave(self) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "the hog did not leave the group"


@pytest.fixture
def one_partition_topic(broker: KafkaBroker) -> Topic:
    name = f"sums-{uuid.uuid4().hex[:8]}"
    create_topic(broker.bootstrap, name, 1)
    create_topic(broker.bootstrap, f"{name}.dlq", 1)
    return Topic(name, f"{name}.dlq", broker.bootstrap)


@pytest.fixture
def hog(one_partition_topic: Topic) -> Iterator[Hog]:
    member = Hog(one_partition_topic)
    yield member
    member.leave()


def rejoins(ledger: Ledger) -> float:
    ledger.process.assert_running()
    try:
        return sample(ledger.metrics_url, "ledger_consumer_rejoins_total") or 0.0
    except OSError:  # the metrics port is not listening yet
        return 0.0


def rejoin_warnings(ledger: Ledger) -> list[dict[str, object]]:
    lines = ledger.process.log_path.read_text(errors="replace").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return [r for r in records if str(r.get("msg", "")).startswith("subscribed without partitions")]


def test_a_ledger_without_partitions_rejoins_and_consumes_once_it_gets_them(
    one_partition_topic: Topic, hog: Hog, start_ledger: LedgerFactory
) -> None:
    topic = one_partition_topic
    wait_until(hog.holds.is_set, 30, "the hog to hold the partition")
    events = [SumComputed(str(uuid.uuid4()), n, n, 2 * n, datetime.now(UTC)) for n in range(EVENTS)]
    kafka = producer(topic.bootstrap)
    for event in events:
        kafka.produce(topic.name, key=event.request_id.encode(), value=event_codec.encode(event))
    assert kafka.flush(30) == 0

    ledger = start_ledger(
        topic,
        wait=False,
        LEDGER_GROUP_INSTANCE_ID="ledger-under-test",
        LEDGER_REJOIN_AFTER_SECONDS=str(REJOIN_AFTER_SECONDS),
    )
    wait_until(lambda: rejoins(ledger) >= 1, REJOIN_AFTER_SECONDS + 40, "the ledger to rejoin its group")
    assert ledger.count() == 0, "the hog held the only partition"
    [warning] = rejoin_warnings(ledger)[:1]
    waited = warning["seconds_without_partitions"]
    assert isinstance(waited, float)
    assert waited >= REJOIN_AFTER_SECONDS

    hog.leave()
    body = ledger.client.wait_count(EVENTS, timeout=60)
    assert body["total"] == str(sum(e.sum for e in events))
    ledger.wait_ready()
    ledger.wait_total_file(body["total"])
