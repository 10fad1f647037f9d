"""The services as real processes on a test's topic, and what the tests do with a running one.

Shared by the integration tests (per-test fixtures), the PromQL stack (one per module) and the container
tests (a ledger in a container offers the same REST API and data directory)."""

from __future__ import annotations

import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import grpc
from prometheus_client.parser import text_string_to_metric_families

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
class LedgerApi:
    """A running ledger, seen through its REST API and its data directory."""

    url: str
    data_dir: Path

    def assert_alive(self) -> None:
        raise NotImplementedError

    def total(self) -> dict[str, object]:
        status, body = http_json(f"{self.url}/v1/total")
        assert status == 200, body
        assert isinstance(body, dict)
        return body

    def count(self) -> int:
        count = self.total()["count"]
        assert isinstance(count, int)
        return count

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            self.assert_alive()
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


@dataclass
class Ledger(LedgerApi):
    process: ManagedProcess
    run_dir: Path

    def assert_alive(self) -> None:
        if not self.process.running:
            raise AssertionError(f"ledger exited ({self.process.poll()}):\n{self.process.log_tail()}")

    def restart(self) -> None:
        self.process.start()
        self.wait_ready()


def start_sum_service(topic: Topic, work_dir: Path, name: str = "sum-svc", **env: str) -> SumService:
    """A sum service on free ports, logging to work_dir/<name>.log; not yet waited for."""
    grpc_port, metrics_port = free_port(), free_port()
    process = ManagedProcess(
        name,
        python_module("sum_svc"),
        sum_service_env(topic.bootstrap, topic.name, grpc_port, metrics_port, **env),
        work_dir / f"{name}.log",
    ).start()
    return SumService(process, f"127.0.0.1:{grpc_port}", f"http://127.0.0.1:{metrics_port}/metrics")


def start_ledger(
    topic: Topic, work_dir: Path, name: str = "ledger", data_dir: Path | None = None, **env: str
) -> Ledger:
    """A ledger on a free port in a consumer group of the topic's own, with its data (unless given), run
    directory and log under work_dir as <name>-data, <name>-run and <name>.log; not yet waited for."""
    port = free_port()
    data_dir = data_dir or work_dir / f"{name}-data"
    run_dir = work_dir / f"{name}-run"
    process = ManagedProcess(
        name,
        python_module("ledger_svc"),
        ledger_env(
            topic.bootstrap,
            topic.name,
            port,
            data_dir,
            run_dir,
            **{"LEDGER_GROUP_ID": f"ledger-{topic.name}", **env},
        ),
        work_dir / f"{name}.log",
    ).start()
    return Ledger(f"http://127.0.0.1:{port}", data_dir, process, run_dir)


def new_id() -> str:
    return str(uuid.uuid4())


def add(
    stub: sum_pb2_grpc.SumServiceStub, request_id: str, a: int, b: int, timeout: float = 10
) -> sum_pb2.AddResponse:
    reply: sum_pb2.AddResponse = stub.Add(
        sum_pb2.AddRequest(request_id=request_id, a=a, b=b), timeout=timeout
    )
    return reply


def samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    """The samples of metric `name` that the Prometheus endpoint at url serves, with their labels."""
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def sample(url: str, name: str, **labels: str) -> float | None:
    return next((value for found, value in samples(url, name) if labels.items() <= found.items()), None)
