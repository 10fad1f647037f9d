"""Real parts for the integration tests: services as real processes (broker and topics: tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from confluent_kafka import Consumer, Producer

from devstack.kafka_broker import free_port
from devstack.services import (
    ManagedProcess,
    grpc_health_status,
    http_json,
    http_ready,
    ledger_env,
    python_module,
    sum_service_env,
    wait_until,
)
from distsum.v1 import sum_pb2, sum_pb2_grpc
from tests.conftest import Topic


@dataclass
class SumService:
    process: ManagedProcess
    target: str
    metrics_url: str

    def stub(self) -> sum_pb2_grpc.SumServiceStub:
        return sum_pb2_grpc.SumServiceStub(grpc.insecure_channel(self.target))

    def wait_status(self, status: str, timeout: float = 30) -> None:
        wait_until(
            lambda: grpc_health_status(self.target) == status, timeout, f"{self.process.name} {status}"
        )


@dataclass
class Ledger:
    process: ManagedProcess
    url: str
    data_dir: Path
    run_dir: Path

    def total(self) -> dict[str, object]:
        status, body = http_json(f"{self.url}/v1/total")
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if not self.process.running:
                raise AssertionError(f"ledger exited ({self.process.poll()}):\n{self.process.log_tail()}")
            return http_ready(f"{self.url}/readyz")

        wait_until(ready, timeout, "the ledger to be ready")

    def wait_count(self, count: int, timeout: float = 60) -> dict[str, object]:
        def reached() -> dict[str, object] | None:
            body = self.total()
            return body if body["count"] == count else None

        return wait_until(reached, timeout, f"ledger count {count}", 0.1)

    def wait_total_file(self, total: object, timeout: float = 30) -> None:
        """The total file is replaced just after the store commit the REST API already shows."""
        path = self.data_dir / "total"
        expected = f"{total}\n"

        def written() -> bool:
            return path.exists() and path.read_text() == expected

        wait_until(written, timeout, f"{path} to read {expected!r}", 0.05)

    def restart(self) -> None:
        self.process.start()
        self.wait_ready()


SumServiceFactory = Callable[..., SumService]
LedgerFactory = Callable[..., Ledger]


@pytest.fixture
def start_sum_service(tmp_path: Path) -> Iterator[SumServiceFactory]:
    started: list[ManagedProcess] = []

    def start(topic: Topic, name: str = "sum-svc", wait: bool = True, **env: str) -> SumService:
        grpc_port, metrics_port = free_port(), free_port()
        process = ManagedProcess(
            name,
            python_module("sum_svc"),
            sum_service_env(topic.bootstrap, topic.name, grpc_port, metrics_port, **env),
            tmp_path / f"{name}.log",
        ).start()
        started.append(process)
        service = SumService(process, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{metrics_port}/metrics")
        if wait:
            service.wait_status("SERVING")
        return service

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_ledger(tmp_path: Path) -> Iterator[LedgerFactory]:
    started: list[ManagedProcess] = []

    def start(topic: Topic, data_dir: Path | None = None, wait: bool = True, **env: str) -> Ledger:
        port = free_port()
        data_dir = data_dir or tmp_path / f"ledger-data-{len(started)}"
        run_dir = tmp_path / f"ledger-run-{len(started)}"
        process = ManagedProcess(
            "ledger",
            python_module("ledger_svc"),
            ledger_env(
                topic.bootstrap,
                topic.name,
                port,
                data_dir,
                run_dir,
                **{"LEDGER_GROUP_ID": f"ledger-{topic.name}", "LEDGER_RETRY_INTERVAL_SECONDS": "0.5", **env},
            ),
            tmp_path / f"ledger-{len(started)}.log",
        ).start()
        started.append(process)
        ledger = Ledger(process, f"http://127.0.0.1:{port}", data_dir, run_dir)
        if wait:
            ledger.wait_ready()
        return ledger

    yield start
    for process in started:
        process.stop()


def new_id() -> str:
    return str(uuid.uuid4())


def add(
    stub: sum_pb2_grpc.SumServiceStub, request_id: str, a: int, b: int, timeout: float = 10
) -> sum_pb2.AddResponse:
    reply: sum_pb2.AddResponse = stub.Add(
        sum_pb2.AddRequest(request_id=request_id, a=a, b=b), timeout=timeout
    )
    return reply


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
