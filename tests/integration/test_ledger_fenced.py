"""A ledger whose static group membership is taken over by another consumer with its group.instance.id
(fenced: librdkafka's fatal consumer error) exits with code 4 and says why, instead of running on with a
consumer that will never consume again while it still reports its partitions and looks ready. A fence by
a join of its own (processed late after a coordinator stall) it survives with a new consumer: here that
join is played by a member that joins with the ledger's group.instance.id and then goes silent."""

from __future__ import annotations

import json
import os
import signal
import uuid
from datetime import UTC, datetime

from confluent_kafka import Consumer

from distsum import event_codec
from distsum.clients.waiting import wait_until
from distsum.domain import SumComputed
from ledger_svc import consumer_status
from localstack.stack import Ledger
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, producer
from tests.services import sample

INSTANCE_ID = "ledger-under-test"
EXIT_KAFKA_FATAL = 4
# A fenced member learns it at its next heartbeat (3 s by default) once the other's join is through; the
# ledger then watches the member that fenced it for its 15 s session timeout and a 5 s grace.
EXIT_DEADLINE_SECONDS = 60


def intruder(topic: Topic, **settings: str) -> Consumer:
    consumer = Consumer(
        {
            "bootstrap.servers": topic.bootstrap,
            "group.id": f"ledger-{topic.name}",
            "group.instance.id": INSTANCE_ID,
            "enable.auto.commit": False,
            **settings,
        }
    )
    consumer.subscribe([topic.name])
    return consumer


def log_records(ledger: Ledger, starting: str) -> list[dict[str, object]]:
    lines = ledger.process.log_path.read_text(errors="replace").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    return [r for r in records if str(r.get("msg", "")).startswith(starting)]


def test_a_ledger_fenced_by_a_member_that_lives_on_exits_naming_it(
    topic: Topic, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic, LEDGER_GROUP_INSTANCE_ID=INSTANCE_ID)
    other = intruder(topic, **{"client.id": "another-ledger"})
    try:

        def exited() -> bool:
            other.poll(0.2)  # only a polling member joins and stays, and its join fences the ledger
            return not ledger.process.running

        wait_until(exited, EXIT_DEADLINE_SECONDS, "the fenced ledger to exit", interval=0)
    finally:
        other.close()

    assert ledger.process.poll() == EXIT_KAFKA_FATAL, ledger.process.log_tail()
    [fatal] = log_records(ledger, "kafka consumer failed fatally")
    assert fatal["level"] == "critical", fatal
    assert "fenced" in str(fatal["reason"]), fatal
    assert "another process runs with it" in str(fatal["reason"]), fatal
    assert fatal["group_instance_id"] == INSTANCE_ID, fatal


def test_a_ledger_fenced_by_a_join_nobody_follows_up_rejoins_and_counts_on(
    topic: Topic, start_ledger: LedgerFactory
) -> None:
    """As a join of the ledger's own that Kafka processed late: a member joins with the ledger's
    group.instance.id and session timeout, then goes silent (a static member's close does not leave)."""
    ledger = start_ledger(topic, LEDGER_GROUP_INSTANCE_ID=INSTANCE_ID)
    late_join = intruder(topic, **{"session.timeout.ms": "15000"})
    try:

        def fenced() -> bool:
            late_join.poll(0.2)
            ledger.process.assert_running()
            return bool(log_records(ledger, "the consumer was fenced; watching"))

        wait_until(fenced, EXIT_DEADLINE_SECONDS, "the ledger to be fenced", interval=0)
    finally:
        late_join.close()

    def rejoined() -> bool:
        ledger.process.assert_running()
        return bool(sample(ledger.metrics_url, "ledger_consumer_own_fences_total"))

    wait_until(rejoined, EXIT_DEADLINE_SECONDS, "the ledger to rejoin after the fence")
    event = SumComputed(str(uuid.uuid4()), 2, 3, 5, datetime.now(UTC))
    kafka = producer(topic.bootstrap)
    kafka.produce(topic.name, key=event.request_id.encode(), value=event_codec.encode(event))
    assert kafka.flush(30) == 0
    assert ledger.client.wait_count(1, timeout=60)["total"] == "5"
    ledger.process.assert_running()


def test_a_consumer_killed_by_a_signal_ends_the_ledger_with_128_plus_the_signal(
    topic: Topic, start_ledger: LedgerFactory
) -> None:
    """Shells and kubelets read a death by SIGKILL as 137; the supervisor passes the child's on as that."""
    ledger = start_ledger(topic)
    status = wait_until(
        lambda: consumer_status.read(ledger.settings.status_file), 30, "the consumer's status"
    )
    os.kill(status.pid, signal.SIGKILL)
    wait_until(lambda: not ledger.process.running, 30, "the ledger to exit")
    assert ledger.process.poll() == 128 + signal.SIGKILL, ledger.process.log_tail()
