"""Kafka stopped and restarted under load: UNAVAILABLE and NOT_SERVING while down, exact total after."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from distsum.clients.ledger import http_json
from distsum.clients.sum_service import health_status
from distsum.clients.waiting import wait_until
from localstack.kafka_broker import KafkaBroker
from localstack.stack import SumService
from tests.conftest import Topic, make_topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory
from tests.services import new_id


def probe(service: SumService, path: str) -> int:
    """The status a kubelet probe of `path` on the sum service's metrics port gets."""
    return http_json(service.metrics_url.replace("/metrics", path), timeout=2)[0]


CLIENTS = 6


@pytest.fixture
def own_broker(kafka_libs: Path, tmp_path: Path) -> Iterator[KafkaBroker]:
    """A broker of this test's own, since the test stops it."""
    with KafkaBroker(kafka_libs, tmp_path / "kafka") as broker:
        yield broker


def test_broker_outage_under_load(
    own_broker: KafkaBroker, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    topic: Topic = make_topic(own_broker)
    ledger = start_ledger(topic)
    service = start_sum_service(
        topic, SUM_PUBLISH_TIMEOUT_SECONDS="2", SUM_HEALTH_PROBE_INTERVAL_SECONDS="0.5"
    )
    client = service.client()
    stop_load = threading.Event()
    acknowledged: dict[str, int] = {}
    unavailable = 0
    lock = threading.Lock()

    def send_load(number: int) -> None:
        nonlocal unavailable
        value = number * 1_000_000
        while not stop_load.is_set():
            value += 1
            request_id = new_id()
            while True:  # a well-behaved client retries the same request_id until acknowledged
                try:
                    reply = client.add(request_id, value, 1, timeout=5)
                    break
                except grpc.RpcError as exc:
                    # A client deadline can pass first on a loaded machine; retrying the id is safe too.
                    assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED), exc
                    if exc.code() == grpc.StatusCode.UNAVAILABLE:
                        with lock:
                            unavailable += 1
                    time.sleep(0.1)  # retry back-off, as a real client would
            with lock:
                acknowledged[request_id] = reply.sum

    with ThreadPoolExecutor(CLIENTS) as pool:
        clients = [pool.submit(send_load, n) for n in range(CLIENTS)]
        wait_until(lambda: len(acknowledged) > 200, 60, "load before the outage")

        own_broker.stop()
        service.wait_status("NOT_SERVING", timeout=20)
        assert health_status(service.target, "liveness") == "SERVING", "an outage must not fail liveness"
        # The kubelet's probes, on the metrics port: unready, and alive.
        assert probe(service, "/readyz") == 503
        assert probe(service, "/healthz") == 200
        with pytest.raises(grpc.RpcError) as refused:
            client.add(new_id(), 1, 1)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        wait_until(lambda: unavailable > 0, 20, "clients to see UNAVAILABLE")
        acknowledged_while_down = len(acknowledged)

        own_broker.start()
        own_broker.wait_ready(60)
        service.wait_status("SERVING", timeout=60)
        wait_until(lambda: probe(service, "/readyz") == 200, 10, "the readiness probe to pass again")
        wait_until(lambda: len(acknowledged) > acknowledged_while_down + 200, 60, "load after the outage")
        stop_load.set()
        for future in clients:
            future.result(timeout=60)

    body = ledger.client.wait_count(len(acknowledged), timeout=90)
    assert body["total"] == str(sum(acknowledged.values()))
