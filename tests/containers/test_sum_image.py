"""The sum image, run hardened against the real broker: healthy, adds, publishes and serves metrics."""

from __future__ import annotations

import urllib.request
import uuid

import grpc
from prometheus_client.parser import text_string_to_metric_families

from distsum.clients.sum_service import health_status
from distsum.clients.waiting import wait_until
from distsum.v1 import sum_pb2, sum_pb2_grpc
from localstack.ports import free_port
from tests.conftest import Topic
from tests.containers.conftest import Containers, assert_hardened
from tests.containers.docker_cli import SUM_IMAGE


def sample(metrics: str, name: str, labels: dict[str, str]) -> float | None:
    for family in text_string_to_metric_families(metrics):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return found.value
    return None


def test_sum_container_serves_adds_and_metrics(topic: Topic, containers: Containers) -> None:
    grpc_port, metrics_port = free_port(), free_port()
    # The host network reaches the test's broker on 127.0.0.1, where it advertises itself.
    service = containers.start(
        SUM_IMAGE,
        "--network",
        "host",
        env={
            "KAFKA_BOOTSTRAP_SERVERS": topic.bootstrap,
            "KAFKA_TOPIC": topic.name,
            "SUM_GRPC_HOST": "127.0.0.1",
            "SUM_GRPC_PORT": str(grpc_port),
            "SUM_METRICS_PORT": str(metrics_port),
        },
    )
    target = f"127.0.0.1:{grpc_port}"

    def serving() -> bool:
        service.assert_running()
        return health_status(target) == "SERVING"

    wait_until(serving, 60, "the sum container to report SERVING")
    assert health_status(target, "liveness") == "SERVING"
    assert_hardened(service, "sum_svc")

    request_id = str(uuid.uuid4())
    with grpc.insecure_channel(target) as channel:
        reply = sum_pb2_grpc.SumServiceStub(channel).Add(
            sum_pb2.AddRequest(request_id=request_id, a=2**40, b=-3), timeout=10
        )
    assert (reply.sum, reply.replayed, reply.request_id) == (2**40 - 3, False, request_id)

    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5) as response:
        assert response.status == 200
        metrics = response.read().decode()
    assert (
        sample(metrics, "sum_grpc_requests_total", {"method": "/distsum.v1.SumService/Add", "code": "OK"})
        == 1
    )
    assert sample(metrics, "sum_kafka_reachable", {}) == 1
