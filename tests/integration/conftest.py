"""Per-test services for the integration tests (broker and topics: tests/conftest.py; the services
themselves: tests/services.py), and reading and writing the topic directly."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer

from devstack.services import wait_until
from tests.conftest import Topic
from tests.services import Ledger, SumService, start_ledger, start_sum_service

SumServiceFactory = Callable[..., SumService]
LedgerFactory = Callable[..., Ledger]


@pytest.fixture(name="start_sum_service")
def sum_service_factory(tmp_path: Path) -> Iterator[SumServiceFactory]:
    started: list[SumService] = []

    def start(topic: Topic, name: str = "sum-svc", wait: bool = True, **env: str) -> SumService:
        service = start_sum_service(topic, tmp_path, name, **env)
        started.append(service)
        if wait:
            service.wait_status("SERVING")
        return service

    yield start
    for service in started:
        service.process.stop()


@pytest.fixture(name="start_ledger")
def ledger_factory(tmp_path: Path) -> Iterator[LedgerFactory]:
    started: list[Ledger] = []

    def start(topic: Topic, data_dir: Path | None = None, wait: bool = True, **env: str) -> Ledger:
        env = {"LEDGER_RETRY_INTERVAL_SECONDS": "0.5", **env}
        ledger = start_ledger(topic, tmp_path, f"ledger-{len(started)}", data_dir, **env)
        started.append(ledger)
        if wait:
            ledger.wait_ready()
        return ledger

    yield start
    for ledger in started:
        ledger.process.stop()


def producer(bootstrap: str) -> Producer:
    return Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "acks": "all", "linger.ms": 5}
    )


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
