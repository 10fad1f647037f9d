"""A ledger whose static group membership is taken over by another consumer with its group.instance.id
(fenced: librdkafka's fatal consumer error) exits with code 4 and says why, instead of running on with a
consumer that will never consume again while it still reports its partitions and looks ready."""

from __future__ import annotations

import json
import os
import signal

from confluent_kafka import Consumer

from distsum.clients.waiting import wait_until
from ledger_svc import consumer_status
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory

INSTANCE_ID = "ledger-under-test"
EXIT_KAFKA_FATAL = 4
# A fenced member learns it at its next heartbeat (3 s by default) once the other's join is through.
EXIT_DEADLINE_SECONDS = 30


def test_a_fenced_ledger_exits_naming_the_cause(topic: Topic, start_ledger: LedgerFactory) -> None:
    ledger = start_ledger(topic, LEDGER_GROUP_INSTANCE_ID=INSTANCE_ID)
    intruder = Consumer(
        {
            "bootstrap.servers": topic.bootstrap,
            "group.id": f"ledger-{topic.name}",
            "group.instance.id": INSTANCE_ID,
            "enable.auto.commit": False,
        }
    )
    intruder.subscribe([topic.name])
    try:

        def exited() -> bool:
            intruder.poll(0.2)  # only a polling member joins, and its join is what fences the ledger
            return not ledger.process.running

        wait_until(exited, EXIT_DEADLINE_SECONDS, "the fenced ledger to exit", interval=0)
    finally:
        intruder.close()

    assert ledger.process.poll() == EXIT_KAFKA_FATAL, ledger.process.log_tail()
    lines = ledger.process.log_path.read_text(errors="replace").splitlines()
    records = [json.loads(line) for line in lines if line.startswith("{")]
    [fatal] = [r for r in records if str(r.get("msg", "")).startswith("kafka consumer failed fatally")]
    assert fatal["level"] == "critical", fatal
    assert "fenced" in str(fatal["reason"]), fatal
    assert fatal["group_instance_id"] == INSTANCE_ID, fatal


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
