"""The real local stack (two sum service replicas and a ledger on the session's broker) and traffic
that makes every series the dashboards and alerts read appear and move."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http import HTTPStatus
from pathlib import Path

import grpc
from confluent_kafka import Producer

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


@dataclass
class Stack:
    topic: Topic
    grpc_targets: list[str]
    ledger_url: str
    targets: list[Target]


@contextlib.contextmanager
def running_stack(topic: Topic, work_dir: Path) -> Iterator[Stack]:
    processes: list[ManagedProcess] = []
    try:
        yield _start_services(topic, work_dir, processes)
    finally:
        for process in processes:
            process.stop()


def _start_services(topic: Topic, work_dir: Path, processes: list[ManagedProcess]) -> Stack:
    targets: list[Target] = []
    grpc_targets: list[str] = []
    for pod in SUM_PODS:
        grpc_port, metrics_port = free_port(), free_port()
        env = sum_service_env(topic.bootstrap, topic.name, grpc_port, metrics_port)
        processes.append(ManagedProcess(pod, python_module("sum_svc"), env, work_dir / f"{pod}.log").start())
        grpc_targets.append(f"127.0.0.1:{grpc_port}")
        targets.append(Target(metrics_port, f"{FULLNAME}-sum", pod, "sum", "metrics"))
    http_port = free_port()
    env = ledger_env(
        topic.bootstrap,
        topic.name,
        http_port,
        work_dir / "ledger-data",
        work_dir / "ledger-run",
        LEDGER_GROUP_ID=f"ledger-{topic.name}",
        LEDGER_GROUP_INSTANCE_ID=LEDGER_POD,
    )
    ledger = ManagedProcess(LEDGER_POD, python_module("ledger_svc"), env, work_dir / "ledger.log").start()
    processes.append(ledger)
    targets.append(Target(http_port, f"{FULLNAME}-ledger", LEDGER_POD, "ledger", "http"))

    for pod, target in zip(SUM_PODS, grpc_targets, strict=True):

        def serving(target: str = target) -> bool:
            return grpc_health_status(target) == "SERVING"

        wait_until(serving, 60, f"{pod} to be SERVING")
    ledger_url = f"http://127.0.0.1:{http_port}"

    def ledger_ready() -> bool:
        assert ledger.running, f"ledger exited:\n{ledger.log_tail()}"
        return http_ready(f"{ledger_url}/readyz")

    wait_until(ledger_ready, 60, "the ledger to be ready")
    return Stack(topic, grpc_targets, ledger_url, targets)


def _add(stub: sum_pb2_grpc.SumServiceStub, request_id: str, a: int, b: int) -> grpc.StatusCode:
    try:
        stub.Add(sum_pb2.AddRequest(request_id=request_id, a=a, b=b), timeout=10)
    except grpc.RpcError as exc:
        code: grpc.StatusCode = exc.code()
        return code
    return grpc.StatusCode.OK


def _every_outcome(stubs: list[sum_pb2_grpc.SumServiceStub], ids: list[str], first: int) -> None:
    """On each replica: an Add, its replay, a conflicting reuse, an invalid id and an overflow.
    ids[k] always adds k + 1, so a retry of it elsewhere is a duplicate, not a conflict."""
    for k, stub in enumerate(stubs, first):
        assert _add(stub, ids[k], k, 1) == grpc.StatusCode.OK
        assert _add(stub, ids[k], k, 1) == grpc.StatusCode.OK
        assert _add(stub, ids[k], k, 2) == grpc.StatusCode.ALREADY_EXISTS
        assert _add(stub, "not-a-uuid", 1, 1) == grpc.StatusCode.INVALID_ARGUMENT
        assert _add(stub, str(uuid.uuid4()), 2**63 - 1, 1) == grpc.StatusCode.OUT_OF_RANGE


def drive_traffic(stack: Stack, after_warm_up: Callable[[], None]) -> Expected:
    """Every kind of call on both replicas and a REST read, then `after_warm_up` (which waits for a
    scrape), then the same again with more Adds, retries on the other replica, and poison records.

    Prometheus sees no increase in a series' first sample, so every labelled series is created and
    scraped before the traffic whose rate the queries show. Each replica has its own idempotency
    record: a retry sent to the other replica publishes the event again, and the ledger skips it as a
    duplicate, or refuses it as a conflict when its operands differ.
    """
    ids = [str(uuid.uuid4()) for _ in range(ADDS)]
    channels = [grpc.insecure_channel(target) for target in stack.grpc_targets]
    try:
        stubs = [sum_pb2_grpc.SumServiceStub(channel) for channel in channels]
        _every_outcome(stubs, ids, 0)
        assert http_json(f"{stack.ledger_url}/v1/total")[0] == HTTPStatus.OK
        after_warm_up()
        _every_outcome(stubs, ids, 2)
        for i in range(4, ADDS):
            assert _add(stubs[i % 2], ids[i], i, 1) == grpc.StatusCode.OK
        for i in range(3):
            assert _add(stubs[(i + 1) % 2], ids[i], i, 1) == grpc.StatusCode.OK  # a ledger duplicate
        for i in range(3, 5):
            assert _add(stubs[(i + 1) % 2], ids[i], i, 2) == grpc.StatusCode.OK  # a ledger conflict
    finally:
        for channel in channels:
            channel.close()

    producer = Producer({"bootstrap.servers": stack.topic.bootstrap, "acks": "all"})
    for value in POISON:
        producer.produce(stack.topic.name, key=b"poison", value=value)
    assert producer.flush(30) == 0

    def counted() -> bool:
        status, body = http_json(f"{stack.ledger_url}/v1/total")
        return status == 200 and (body["count"], body["dead_letters"]) == (ADDS, len(POISON))

    wait_until(counted, 60, f"the ledger to count {ADDS} events and {len(POISON)} dead letters", 0.1)
    return Expected(count=ADDS, dead_letters=len(POISON), ledger_duplicates=3, ledger_conflicts=2)
