"""Per-test services for the integration tests (broker and topics: tests/conftest.py; the services: the
harness's LocalStack), and reading and writing the topic directly."""

from __future__ import annotations

import contextlib
import itertools
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from distsum.clients.waiting import wait_until
from distsum.kafka import clients as kafka_clients
from localstack.stack import QUICK_RECOVERY, Ledger, LocalStack, SumService
from tests.conftest import Topic

SumServiceFactory = Callable[..., SumService]
LedgerFactory = Callable[..., Ledger]


@pytest.fixture
def stack_on(tmp_path: Path) -> Iterator[Callable[[Topic], LocalStack]]:
    """Services on a topic, with their state and logs under the test's tmp_path; all stopped after it."""
    with contextlib.ExitStack() as resources:
        yield lambda topic: LocalStack(resources, topic.bootstrap, topic.name, tmp_path, QUICK_RECOVERY)


@pytest.fixture(name="start_sum_service")
def sum_service_factory(stack_on: Callable[[Topic], LocalStack]) -> SumServiceFactory:
    def start(topic: Topic, name: str = "sum-svc", wait: bool = True, **env: str) -> SumService:
        return stack_on(topic).sum_service(name, wait=wait, env=env)

    return start


@pytest.fixture(name="start_ledger")
def ledger_factory(stack_on: Callable[[Topic], LocalStack]) -> LedgerFactory:
    """Ledgers named ledger-0, ledger-1, ... in a consumer group of the topic's own."""
    numbers = itertools.count()

    def start(topic: Topic, data_dir: Path | None = None, wait: bool = True, **env: str) -> Ledger:
        return stack_on(topic).ledger(
            f"ledger-{next(numbers)}",
            data_dir=data_dir,
            wait=wait,
            env={"LEDGER_GROUP_ID": f"ledger-{topic.name}", **env},
        )

    return start


def producer(bootstrap: str) -> Producer:
    return kafka_clients.producer(bootstrap, settings={"linger.ms": 5})


def read_all(bootstrap: str, topic: str, expected: int, timeout: float = 30) -> list[object]:
    """Read the topic from the start until `expected` records arrived (then a short quiet check)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    records: list[object] = []
    try:

        def enough() -> bool:
            for message in consumer.consume(500, 0.2):
                if message.error() is None:
                    records.append(message)
            return len(records) >= expected

        wait_until(enough, timeout, f"{expected} records on {topic}", interval=0)
        records.extend(m for m in consumer.consume(500, 1.0) if m.error() is None)
    finally:
        consumer.close()
    return records
