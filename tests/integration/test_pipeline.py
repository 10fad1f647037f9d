"""The whole pipeline on a real broker: gRPC in, Kafka through, exact total out."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from localstack.go_tools import go_tool
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory, read_all
from tests.services import new_id

GRACE_SECONDS = 5


def test_add_is_counted_once_and_written_to_the_total_file(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    client = start_sum_service(topic).client()

    reply = client.add(new_id(), 2, 3)

    assert (reply.sum, reply.replayed) == (5, False)
    body = ledger.client.wait_count(1)
    assert body["total"] == "5"
    ledger.wait_total_file(5)


def test_sequential_duplicates_replay_and_count_once(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    client = start_sum_service(topic).client()
    request_id = new_id()

    first = client.add(request_id, 40, 2)
    again = client.add(request_id.upper(), 40, 2)
    braces = client.add("{" + request_id + "}", 40, 2)

    assert (first.sum, first.replayed) == (42, False)
    assert (again.sum, again.replayed) == (42, True)
    assert (braces.sum, braces.replayed) == (42, True)
    assert ledger.client.wait_count(1)["total"] == "42"
    assert len(read_all(topic.bootstrap, topic.name, 1)) == 1


def test_concurrent_duplicates_publish_one_event(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    client = start_sum_service(topic).client()
    request_id = new_id()
    barrier = threading.Barrier(16)

    def call() -> tuple[int, bool]:
        barrier.wait()
        reply = client.add(request_id, 7, 8)
        return reply.sum, reply.replayed

    with ThreadPoolExecutor(16) as pool:
        replies = list(pool.map(lambda _: call(), range(16)))

    assert {s for s, _ in replies} == {15}
    assert sum(1 for _, replayed in replies if not replayed) == 1
    assert ledger.client.wait_count(1)["total"] == "15"
    assert len(read_all(topic.bootstrap, topic.name, 1)) == 1


def test_duplicates_across_two_sum_services_count_once(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    first, second = start_sum_service(topic, "sum-a").client(), start_sum_service(topic, "sum-b").client()
    requests = [(new_id(), i, i * 3) for i in range(200)]

    def send_to_both(request: tuple[str, int, int]) -> None:
        for client in (first, second, first):
            assert client.add(*request).sum == request[1] + request[2]

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(send_to_both, requests))

    body = ledger.client.wait_count(len(requests))
    assert body["total"] == str(sum(a + b for _, a, b in requests))


def test_reused_request_id_with_other_operands_is_rejected_and_not_counted(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    client = start_sum_service(topic).client()
    request_id = new_id()
    client.add(request_id, 1, 1)

    with pytest.raises(grpc.RpcError) as rejected:
        client.add(request_id, 1, 2)

    assert rejected.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "already used" in (rejected.value.details() or "")
    client.add(new_id(), 10, 0)
    assert ledger.client.wait_count(2)["total"] == "12"


def test_health_and_reflection(topic: Topic, start_sum_service: SumServiceFactory) -> None:
    service = start_sum_service(topic)
    channel = grpc.insecure_channel(service.target)
    health = health_pb2_grpc.HealthStub(channel)
    for name in ("", "distsum.v1.SumService"):
        status = health.Check(health_pb2.HealthCheckRequest(service=name), timeout=5).status
        assert status == health_pb2.HealthCheckResponse.SERVING

    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")])
    )
    services = {s.name for reply in replies for s in reply.list_services_response.service}
    assert {"distsum.v1.SumService", "grpc.health.v1.Health"} <= services


def test_tools_work_by_reflection_alone(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    """grpcurl (pinned), as users and load tools reach the service: no .proto files, only reflection."""
    ledger = start_ledger(topic)
    service = start_sum_service(topic)
    grpcurl = go_tool("grpcurl")

    def call(*args: str) -> str:
        done = subprocess.run(
            [grpcurl, "-plaintext", *args], capture_output=True, text=True, timeout=30, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    listed = call(service.target, "list").split()
    assert {"distsum.v1.SumService", "grpc.reflection.v1.ServerReflection"} <= set(listed)
    # Every listed service can be described: the v1 reflection service too (grpcio-reflection has no
    # descriptor of it; `describe` with no argument describes them all and failed on it).
    described = call(service.target, "describe")
    for name in listed:
        assert f"{name} is a service:" in described
    # The method symbol, as `grpcurl describe` and `ghz --call` ask for it.
    assert "rpc Add ( .distsum.v1.AddRequest ) returns ( .distsum.v1.AddResponse )" in call(
        service.target, "describe", "distsum.v1.SumService.Add"
    )
    request = json.dumps({"request_id": new_id(), "a": 2, "b": 3})
    assert json.loads(call("-d", request, service.target, "distsum.v1.SumService/Add"))["sum"] == "5"
    assert ledger.client.wait_count(1)["total"] == "5"


def test_cli_add_and_total(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    service = start_sum_service(topic)
    cli = [sys.executable, "-m", "distsum.cli"]
    request_id = new_id()

    added = subprocess.run(
        [*cli, "add", "2", "3", "--request-id", request_id, "--target", service.target],
        capture_output=True,
        text=True,
        check=True,
    )
    replayed = subprocess.run(
        [*cli, "add", "2", "3", "--request-id", request_id, "--target", service.target],
        capture_output=True,
        text=True,
        check=True,
    )
    ledger.client.wait_count(1)
    total = subprocess.run(
        [*cli, "total", "--ledger-url", ledger.url], capture_output=True, text=True, check=True
    )

    assert added.stdout.strip() == "5"
    assert "replayed" in replayed.stderr
    assert total.stdout.strip() == "5"


def test_the_ledgers_files_are_private(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    """The store holds every caller's operands: its files are 0600 and its directories 0700."""
    ledger = start_ledger(topic)
    start_sum_service(topic).client().add(new_id(), 2, 3)
    ledger.client.wait_count(1)
    # The directory itself is the volume's (made by whoever mounts it); what the ledger creates is private.
    paths = list(ledger.data_dir.rglob("*"))
    assert any(path.is_file() for path in paths)
    loose = {
        str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in paths if path.stat().st_mode & 0o077
    }
    assert loose == {}


def test_metrics_are_exposed(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    service = start_sum_service(topic)
    request_id = new_id()
    service.client().add(request_id, 1, 2)
    service.client().add(request_id, 1, 2)
    ledger.client.wait_count(1)

    sum_metrics = urllib.request.urlopen(service.metrics_url, timeout=5).read().decode()
    assert 'sum_grpc_requests_total{code="OK",method="/distsum.v1.SumService/Add"} 2.0' in sum_metrics
    assert "sum_replays_total 1.0" in sum_metrics
    assert "sum_kafka_reachable 1.0" in sum_metrics

    text = urllib.request.urlopen(ledger.metrics_url, timeout=5).read().decode()
    assert "ledger_events_applied_total 1.0" in text
    assert "ledger_total 3.0" in text
    assert "flask_http_request_total" in text


def test_sigterm_drains_in_flight_requests_and_exits_cleanly(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    service = start_sum_service(topic, SUM_SHUTDOWN_GRACE_SECONDS=str(GRACE_SECONDS))
    client = service.client()
    started = threading.Event()
    answered: list[int] = []
    # (started, ended, status) of every call, to tell the calls in flight when SIGTERM came.
    calls_seen: list[tuple[float, float, grpc.StatusCode]] = []

    def call(value: int) -> None:
        started.set()
        began = time.monotonic()
        try:
            # A deadline past the grace period, so every call ends with the server's own answer.
            answered.append(client.add(new_id(), value, 0, timeout=3 * GRACE_SECONDS).sum)
            calls_seen.append((began, time.monotonic(), grpc.StatusCode.OK))
        except grpc.RpcError as exc:
            # Calls arriving after the listener closed are refused, and the client retries elsewhere. A call
            # that reaches grpc.aio just as it stops can be left unserved until the grace period ends and
            # then cancelled: slow, but the client retries it too, and nothing was published for it.
            assert exc.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED), exc
            calls_seen.append((began, time.monotonic(), exc.code()))

    with ThreadPoolExecutor(32) as pool:
        calls = [pool.submit(call, value) for value in range(1, 201)]
        started.wait(10)
        stopped_at = time.monotonic()
        exit_code = service.process.stop()
        for future in calls:
            future.result(timeout=30)

    in_flight = [status for began, ended, status in calls_seen if began < stopped_at < ended]
    assert in_flight, "no call was in flight when SIGTERM came: the drain was not tested"
    # Draining: the calls the handlers had are finished (measured: 5 to 15 of about 30 in flight; the
    # others had not reached a handler and end UNAVAILABLE or CANCELLED at once, and are retried), and
    # no call waits for the end of the grace period.
    assert grpc.StatusCode.OK in in_flight, f"none of {len(in_flight)} calls in flight was drained"
    slowest = max(ended - began for began, ended, _ in calls_seen)
    assert slowest < GRACE_SECONDS / 2, f"a call took {slowest:.1f}s: it waited out the grace period"
    assert exit_code == 0, service.process.log_tail()
    assert answered
    assert '"msg": "sum service stopped"' in service.process.log_path.read_text()
    body = ledger.client.wait_count(len(answered))
    assert body["total"] == str(sum(answered))


def test_a_stopped_ledger_logs_its_stop_and_nothing_worse(topic: Topic, start_ledger: LedgerFactory) -> None:
    """SIGTERM, as Kubernetes and Ctrl-C in `make run` send it, is an ordinary event."""
    ledger = start_ledger(topic)
    assert ledger.process.stop() == 0, ledger.process.log_tail()
    text = ledger.process.log_path.read_text()
    assert "Traceback" not in text, text
    levels = {json.loads(line)["level"] for line in text.splitlines() if line.startswith("{")}
    assert levels <= {"debug", "info"}, ledger.process.log_tail()
    assert '"msg": "consumer stopped"' in text
    assert '"msg": "ledger stopped"' in text
