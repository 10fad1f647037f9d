"""Backups of a running ledger and their restore (python -m ledger_svc.backup, run as a process the way an
operator or the chart's CronJob runs it): a backup taken under load is a consistent store; restored onto
a lost volume, the ledger catches up from Kafka and the total is exact per request id; and a restore that
Kafka could not bring up to date is refused."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from confluent_kafka import TopicPartition

from distsum.clients.waiting import wait_until
from distsum.kafka import clients as kafka_clients
from ledger_svc.store.schema import STORE_FILE
from localstack.stack import Ledger, LocalStack
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory, add_many
from tests.integration.test_log_restart import end_offsets, recreate_topics
from tests.services import new_id

CLIENTS = 4


def run_backup(stack: LocalStack, *args: str, data_dir: Path) -> dict[str, Any]:
    done = stack.ledger_backup(*args, data_dir=data_dir)
    assert done.returncode == 0, f"backup {args} failed:\n{done.stderr}"
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def refusal(stack: LocalStack, *args: str, data_dir: Path) -> str:
    done = stack.ledger_backup(*args, data_dir=data_dir)
    assert done.returncode == 1, f"backup {args} was not refused:\n{done.stdout}\n{done.stderr}"
    return done.stderr


def assert_exact_per_id(ledger: Ledger, acknowledged: dict[str, int]) -> None:
    body = ledger.client.wait_count(len(acknowledged), timeout=90)
    assert body["total"] == str(sum(acknowledged.values()))
    applied = {e["request_id"]: int(e["sum"]) for e in ledger.client.entries()}
    assert applied == acknowledged
    ledger.wait_total_file(body["total"])


def test_a_backup_taken_under_load_restores_exactly_onto_a_lost_volume(
    topic: Topic,
    stack_on: Callable[[Topic], LocalStack],
    start_ledger: LedgerFactory,
    start_sum_service: SumServiceFactory,
    tmp_path: Path,
) -> None:
    stack = stack_on(topic)
    ledger = start_ledger(topic)
    service = start_sum_service(topic)
    acknowledged: dict[str, int] = {}
    stop = threading.Event()

    def send(client_number: int) -> None:
        with service.client() as client:
            value = client_number * 1_000_000
            while not stop.is_set():
                value += 1
                request_id = new_id()
                acknowledged[request_id] = client.add(request_id, value, 1, timeout=10).sum

    backups = tmp_path / "backups"
    with ThreadPoolExecutor(CLIENTS) as pool:
        clients = [pool.submit(send, n) for n in range(CLIENTS)]
        wait_until(lambda: ledger.client.count() >= 200, 60, "the ledger to count 200 Adds")
        taken = run_backup(stack, "take", "--to", str(backups), data_dir=ledger.data_dir)
        wait_until(lambda: len(acknowledged) >= taken["count"] + 200, 60, "Adds after the backup")
        stop.set()
        for done in clients:
            done.result(timeout=60)
    assert_exact_per_id(ledger, acknowledged)
    assert 200 <= taken["count"] < len(acknowledged), "the backup was not taken mid-stream"
    shown = run_backup(stack, "show", str(backups), data_dir=ledger.data_dir)
    assert shown == {k: v for k, v in taken.items() if k != "seconds"}

    ledger.process.stop()
    shutil.rmtree(ledger.data_dir)  # the volume is lost
    restored = run_backup(stack, "restore", taken["backup"], data_dir=ledger.data_dir)
    # Every record Kafka holds past the backup, and nothing else, is left for the ledger to apply.
    assert sum(restored["records_to_catch_up"].values()) == len(acknowledged) - taken["count"]
    assert (restored["total"], restored["count"]) == (taken["total"], taken["count"])

    assert_exact_per_id(start_ledger(topic, data_dir=ledger.data_dir), acknowledged)


def test_a_restore_kafka_cannot_bring_up_to_date_is_refused_and_changes_nothing(
    topic: Topic,
    stack_on: Callable[[Topic], LocalStack],
    start_ledger: LedgerFactory,
    start_sum_service: SumServiceFactory,
    tmp_path: Path,
) -> None:
    stack = stack_on(topic)
    ledger = start_ledger(topic)
    service = start_sum_service(topic)
    acknowledged = add_many(service, 40, 0)
    ledger.client.wait_count(len(acknowledged))
    taken = run_backup(stack, "take", "--to", str(tmp_path / "backups"), data_dir=ledger.data_dir)
    backup = taken["backup"]
    empty = tmp_path / "empty-volume"

    # Over a volume that holds a store.
    before = (ledger.data_dir / STORE_FILE).read_bytes()
    assert "already exists" in refusal(stack, "restore", backup, data_dir=ledger.data_dir)
    assert (ledger.data_dir / STORE_FILE).read_bytes() == before

    # Retention deleted records the backup never read.
    add_many(service, 40, 100)
    ends = end_offsets(topic)
    admin = kafka_clients.admin(topic.bootstrap)
    for done in admin.delete_records(
        [TopicPartition(topic.name, p, end) for p, end in ends.items()]
    ).values():
        done.result(30)
    assert "retention has deleted" in refusal(stack, "restore", backup, data_dir=empty)
    assert not (empty / STORE_FILE).exists()

    # The topic created again: another log, whose offsets the backup's mean nothing in.
    ledger.process.stop()
    admin.delete_topics([topic.name], operation_timeout=30)[topic.name].result(30)
    wait_until(lambda: topic.name not in admin.list_topics(timeout=5).topics, 30, "the topic to be deleted")
    recreate_topics(topic)
    message = refusal(stack, "restore", backup, data_dir=empty)
    assert "another Kafka log" in message and "topic_id_changed" in message
    assert not (empty / STORE_FILE).exists()
