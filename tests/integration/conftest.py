"""Per-test services for the integration tests (broker and topics: tests/conftest.py; the services: the
harness's LocalStack), and reading and writing the topic directly."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import ssl
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from confluent_kafka import Consumer, Producer

from distsum.clients.waiting import wait_until
from distsum.kafka import clients as kafka_clients
from localstack.certificates import LocalTls
from localstack.processes import ManagedProcess
from localstack.stack import QUICK_RECOVERY, Ledger, LocalStack, SumService
from tests.conftest import Topic
from tests.services import new_id

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


@pytest.fixture
def tls_stack(topic: Topic, tmp_path: Path) -> Iterator[LocalStack]:
    """Both services with mutual TLS (certificates made for the test), on the test's own topic and group."""
    env = {**QUICK_RECOVERY, "LEDGER_GROUP_ID": f"ledger-{topic.name}"}
    with contextlib.ExitStack() as resources:
        yield LocalStack(
            resources, topic.bootstrap, topic.name, tmp_path, env, tls=LocalTls(tmp_path / "tls")
        )


def served_certificate(host: str, port: int, tls: LocalTls) -> bytes:
    """The certificate (DER) a new TLS connection to host:port is served, read with Python's ssl."""
    context = tls.ssl_context()
    context.set_alpn_protocols(["h2", "http/1.1"])  # gRPC's server insists on h2
    with (
        socket.create_connection((host, port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname=host) as connection,
    ):
        served = connection.getpeercert(binary_form=True)
    assert served is not None
    return served


def rotate_server_certificate(tls: LocalTls, host: str, port: int) -> None:
    """Replace the server's key pair in place, as the kubelet updates a mounted Secret (each file in one
    rename), and wait until a new connection to host:port is served the new certificate."""
    before = served_certificate(host, port, tls)
    cert, key = tls.issue_server().write(tls.directory / "next", "server")
    os.replace(cert, tls.server_cert_file)
    os.replace(key, tls.server_key_file)
    after = wait_until(
        lambda: (served := served_certificate(host, port, tls)) != before and served,
        30,
        "a new connection to be served the new certificate",
    )
    assert after == ssl.PEM_cert_to_DER_cert(tls.server_cert_file.read_text())


def log_records(process: ManagedProcess) -> list[dict[str, object]]:
    """The JSON lines a service logged."""
    lines = process.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def add_many(service: SumService, count: int, first: int) -> dict[str, int]:
    """count Adds from 8 clients, each retried with its id until acknowledged; the acknowledged sums."""
    client = service.client()

    def one(value: int) -> tuple[str, int]:
        request_id = new_id()
        deadline = time.monotonic() + 60
        while True:
            try:
                return request_id, client.add(request_id, value, 1, timeout=5).sum
            except grpc.RpcError as exc:
                retryable = exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
                if not retryable or time.monotonic() > deadline:
                    raise AssertionError(f"{exc}\nsum service log:\n{service_story(service)}") from exc
                time.sleep(0.1)

    with ThreadPoolExecutor(8) as pool:
        return dict(pool.map(one, range(first, first + count)))


def service_story(service: SumService) -> str:
    """The sum service's log without its per-call lines: what happened to it, for a failure message."""
    per_call = ('"msg": "added"', '"msg": "event not acknowledged"')
    lines = service.process.log_path.read_text(errors="replace").splitlines()
    return "\n".join(line for line in lines if not any(marker in line for marker in per_call))[-8000:]
