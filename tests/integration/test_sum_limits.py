"""What one caller can cost the sum service: each limit gets its abusive input against the real process,
and the service keeps answering its real clients with nothing lost (sum_svc/limits.py)."""

from __future__ import annotations

import socket
import struct
import subprocess
import urllib.request
import uuid

import grpc
import pytest

from distsum.v1 import sum_pb2
from localstack.go_tools import go_tool
from localstack.stack import SumService
from sum_svc.limits import BUSY_MESSAGE
from tests.conftest import Topic
from tests.integration.conftest import LedgerFactory, SumServiceFactory


def new_id() -> str:
    return str(uuid.uuid4())


def metric(service: SumService, line_start: str) -> float:
    text = urllib.request.urlopen(service.metrics_url, timeout=5).read().decode()
    (value,) = [line.rsplit(" ", 1)[1] for line in text.splitlines() if line.startswith(line_start + " ")]
    return float(value)


def test_an_oversized_request_is_refused_unread_and_real_clients_are_served(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    ledger = start_ledger(topic)
    service = start_sum_service(topic)
    with service.client() as client:
        with pytest.raises(grpc.RpcError) as refused:
            client.stub.Add(sum_pb2.AddRequest(request_id="x" * (4 * 1024 * 1024), a=1, b=1), timeout=10)
        assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        # The same connection still serves a real Add, and only that one is counted.
        assert client.add(new_id(), 2, 3).sum == 5
    assert ledger.client.wait_count(1)["total"] == "5"
    assert service.status() == "SERVING"


def test_calls_beyond_the_in_flight_cap_are_refused_and_nothing_is_lost(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    """300 Adds at once against a cap of 1: the excess is answered RESOURCE_EXHAUSTED at once (not
    queued), counted and never published; retried with the same ids, every one is counted once."""
    ledger = start_ledger(topic)
    # All 300 on one new connection: the stream cap is raised so the server does not refuse streams the
    # client opened before it learned that cap (REFUSED_STREAM, seen as UNAVAILABLE), which is not what
    # this test is about.
    service = start_sum_service(topic, SUM_MAX_IN_FLIGHT_CALLS="1", SUM_MAX_CONCURRENT_STREAMS="1000")
    operands = {new_id(): (n, 1) for n in range(300)}
    with service.client() as client:
        calls = {
            request_id: client.stub.Add.future(
                sum_pb2.AddRequest(request_id=request_id, a=a, b=b), timeout=30
            )
            for request_id, (a, b) in operands.items()
        }
        refused: list[str] = []
        for request_id, call in calls.items():
            error = call.exception()
            if error is None:
                continue
            assert isinstance(error, grpc.RpcError) and isinstance(error, grpc.Call), error
            assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
            assert error.details() == BUSY_MESSAGE
            refused.append(request_id)
        assert refused, "the cap of 1 refused none of 300 simultaneous calls"
        assert metric(service, 'sum_grpc_refused_total{reason="in_flight_limit"}') == len(refused)
        # Health is never capped: the probes of a busy service keep passing.
        assert service.status() == "SERVING"
        for request_id in refused:
            a, b = operands[request_id]
            assert not client.add(request_id, a, b).replayed, "a refused call must not have been recorded"
    body = ledger.client.wait_count(len(operands))
    assert body["total"] == str(sum(a + b for a, b in operands.values()))


def _server_settings(target: str) -> dict[int, int]:
    """The HTTP/2 SETTINGS the server announces to a new connection (RFC 9113, section 6.5)."""
    host, port = target.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as connection:
        empty_settings = bytes(3) + b"\x04\x00" + bytes(4)  # length 0, type SETTINGS, no flags, stream 0
        connection.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + empty_settings)
        buffer = b""
        while True:
            while len(buffer) < 9:
                chunk = connection.recv(4096)
                assert chunk, "the server closed the connection before its SETTINGS"
                buffer += chunk
            length = int.from_bytes(buffer[:3], "big")
            frame_type, flags = buffer[3], buffer[4]
            while len(buffer) < 9 + length:
                buffer += connection.recv(4096)
            payload, buffer = buffer[9 : 9 + length], buffer[9 + length :]
            if frame_type == 0x4 and not flags & 0x1:  # SETTINGS, not an ACK
                return dict(struct.unpack(">HI", payload[i : i + 6]) for i in range(0, length, 6))


def test_each_connection_is_told_the_stream_cap(topic: Topic, start_sum_service: SumServiceFactory) -> None:
    """A flood of streams on one connection cannot exceed what the server announces; the client's
    own gRPC library queues the rest."""
    service = start_sum_service(topic, SUM_MAX_CONCURRENT_STREAMS="7")
    settings = _server_settings(service.target)
    max_concurrent_streams = 0x3
    assert settings[max_concurrent_streams] == 7


def test_connections_are_recycled_without_failing_calls(
    topic: Topic, start_sum_service: SumServiceFactory, start_ledger: LedgerFactory
) -> None:
    """Connections older than the maximum age are closed with a grace period (GOAWAY): a client that
    keeps calling on one channel over several ages sees no error."""
    ledger = start_ledger(topic)
    service = start_sum_service(topic, SUM_MAX_CONNECTION_AGE_SECONDS="0.5")
    with service.client() as client:
        for n in range(60):
            assert client.add(new_id(), n, 0).sum == n
            if n % 20 == 19:
                # Let the connection age past the limit between bursts.
                ledger.client.wait_count(n + 1)
    assert ledger.client.wait_count(60)["total"] == str(sum(range(60)))


def test_reflection_can_be_turned_off(topic: Topic, start_sum_service: SumServiceFactory) -> None:
    service = start_sum_service(topic, SUM_REFLECTION="false")
    grpcurl = go_tool("grpcurl")
    listed = subprocess.run(
        [grpcurl, "-plaintext", service.target, "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert listed.returncode != 0
    assert "does not support the reflection API" in listed.stderr
    assert service.client().add(new_id(), 2, 3).sum == 5
