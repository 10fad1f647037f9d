"""The real local stack (two sum service replicas and a ledger on the session's broker) and traffic
that makes every series the dashboards and alerts read appear and move."""

from __future__ import annotations

import contextlib
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc

from distsum.clients.sum_service import SumClient
from distsum.clients.waiting import wait_until
from distsum.kafka import clients as kafka_clients
from localstack.certificates import LocalTls
from localstack.stack import Ledger, LocalStack, SumService
from tests.chart.chart_tools import RELEASE
from tests.conftest import Topic
from tests.promql.prometheus import Target

FULLNAME = f"{RELEASE}-distributed-sum"
LEDGER_POD = f"{FULLNAME}-ledger-0"
SUM_PODS = (f"{FULLNAME}-sum-7c9d8f6b5-4xk2p", f"{FULLNAME}-sum-7c9d8f6b5-9qz7m")

ADDS = 40
POISON = (b"", b"\xff\xfe not protobuf", b"\x0a\x03abc")


@dataclass
class Expected:
    """What the traffic leaves behind, for the waits."""

    count: int
    dead_letters: int
    ledger_duplicates: int
    ledger_conflicts: int
    rest_reads: int


@dataclass
class Stack:
    topic: Topic
    sum_services: list[SumService]
    ledger: Ledger
    targets: list[Target]


@contextlib.contextmanager
def running_stack(topic: Topic, work_dir: Path) -> Iterator[Stack]:
    """Two sum services and a ledger named as the chart's pods, so the queries' labels match, with mutual
    TLS as the chart deploys them (its series, e.g. the certificates' expiry, exist only then)."""
    with contextlib.ExitStack() as resources:
        tls = LocalTls(work_dir / "tls")
        local = LocalStack(resources, topic.bootstrap, topic.name, work_dir, tls=tls)
        sum_services = [local.sum_service(pod, wait=False) for pod in SUM_PODS]
        ledger = local.ledger(
            LEDGER_POD,
            wait=False,
            env={
                "LEDGER_GROUP_ID": f"ledger-{topic.name}",
                "LEDGER_GROUP_INSTANCE_ID": LEDGER_POD,
                # As the chart's ledger with backups on: its newest backup's age is an alert's signal.
                "LEDGER_BACKUP_DIR": str(work_dir / "backups"),
            },
        )
        for service in sum_services:
            service.wait_status("SERVING")
        ledger.wait_ready()
        targets = [
            Target(_port(service.metrics_url), f"{FULLNAME}-sum", pod, "sum", "metrics")
            for pod, service in zip(SUM_PODS, sum_services, strict=True)
        ]
        ledger_port = _port(ledger.metrics_url)
        targets.append(Target(ledger_port, f"{FULLNAME}-ledger", LEDGER_POD, "ledger", "metrics"))
        yield Stack(topic, sum_services, ledger, targets)


def _port(url: str) -> int:
    port = urllib.parse.urlsplit(url).port
    assert port is not None, url
    return port


def _add(client: SumClient, request_id: str, a: int, b: int) -> grpc.StatusCode:
    try:
        client.add(request_id, a, b)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def _every_outcome(clients: list[SumClient], ids: list[str], first: int) -> None:
    """On each replica: an Add, its replay, a conflicting reuse, an invalid id and an overflow.
    ids[k] always adds k + 1, so a retry of it elsewhere is a duplicate, not a conflict."""
    for k, client in enumerate(clients, first):
        assert _add(client, ids[k], k, 1) == grpc.StatusCode.OK
        assert _add(client, ids[k], k, 1) == grpc.StatusCode.OK
        assert _add(client, ids[k], k, 2) == grpc.StatusCode.ALREADY_EXISTS
        assert _add(client, "not-a-uuid", 1, 1) == grpc.StatusCode.INVALID_ARGUMENT
        assert _add(client, str(uuid.uuid4()), 2**63 - 1, 1) == grpc.StatusCode.OUT_OF_RANGE


def drive_traffic(stack: Stack, after_warm_up: Callable[[], None]) -> Expected:
    """Every kind of call on both replicas and a REST read, then `after_warm_up` (which waits for a
    scrape), then the same again with more Adds, retries on the other replica, poison records and
    the REST reads that wait for the ledger to count them.

    Prometheus sees no increase in a series' first sample, so every labelled series is created and
    scraped before the traffic whose rate the queries show: the ledger's REST series too, which the
    ledger creates only at the first read. Each replica has its own idempotency record: a retry sent
    to the other replica publishes the event again, and the ledger skips it as a duplicate, or
    refuses it as a conflict when its operands differ.
    """
    ids = [str(uuid.uuid4()) for _ in range(ADDS)]
    clients = [service.client() for service in stack.sum_services]
    try:
        _every_outcome(clients, ids, 0)
        stack.ledger.total()
        rest_reads = 1
        after_warm_up()
        _every_outcome(clients, ids, 2)
        for i in range(4, ADDS):
            assert _add(clients[i % 2], ids[i], i, 1) == grpc.StatusCode.OK
        for i in range(3):
            assert _add(clients[(i + 1) % 2], ids[i], i, 1) == grpc.StatusCode.OK  # a ledger duplicate
        for i in range(3, 5):
            assert _add(clients[(i + 1) % 2], ids[i], i, 2) == grpc.StatusCode.OK  # a ledger conflict
    finally:
        for client in clients:
            client.close()

    producer = kafka_clients.producer(stack.topic.bootstrap)
    for value in POISON:
        producer.produce(stack.topic.name, key=b"poison", value=value)
    assert producer.flush(30) == 0

    def counted() -> bool:
        nonlocal rest_reads
        body = stack.ledger.total()
        rest_reads += 1
        return (body["count"], body["dead_letters"]) == (ADDS, len(POISON))

    wait_until(counted, 60, f"the ledger to count {ADDS} events and {len(POISON)} dead letters", 0.1)
    return Expected(
        count=ADDS, dead_letters=len(POISON), ledger_duplicates=3, ledger_conflicts=2, rest_reads=rest_reads
    )
